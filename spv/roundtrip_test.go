package spv_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// TestRoundTripsPerLookup counts request lines at the server: one per
// lookup on protocol 1.4.3 (get_value_proof), two on 1.4.2 (get_history,
// then one batch), once the connection is open.
func TestRoundTripsPerLookup(t *testing.T) {
	nc := buildNamedChain(51)
	for proto, want := range map[string]int{"1.4.3": 1, "1.4.2": 2} {
		srv := startServer(t, nc.backend(), proto)
		e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
		ctx := syncEngine(t, e)
		opts := spv.LookupOptions{StreamID: "rt"}
		if _, err := e.NameShow(ctx, []byte("d/ascii"), opts); err != nil { // opens the connection
			t.Fatal(err)
		}
		for _, name := range []string{"d/fresh", string(utf8Name)} {
			before := srv.RoundTrips()
			if _, err := e.NameShow(ctx, []byte(name), opts); err != nil {
				t.Fatal(err)
			}
			if got := srv.RoundTrips() - before; got != want {
				t.Errorf("protocol %s: %d round trips for one lookup, want %d", proto, got, want)
			}
		}
		e.Close()
	}
}

// TestCachePerStream: a repeated lookup on one stream ID is answered from
// the cache; another stream ID never sees it; a new block invalidates it.
func TestCachePerStream(t *testing.T) {
	nc := buildNamedChain(52)
	b := nc.backend()
	srv := startServer(t, b, "1.4.3")
	e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
	defer e.Close()
	ctx := syncEngine(t, e)
	look := func(stream, name string) int {
		before := srv.RoundTrips()
		var ne *spv.NameError
		if _, err := e.NameShow(ctx, []byte(name), spv.LookupOptions{StreamID: stream}); err != nil && !errors.As(err, &ne) {
			t.Fatal(err)
		}
		return srv.RoundTrips() - before
	}
	look("a", "d/ascii")
	if n := look("a", "d/ascii"); n != 0 {
		t.Fatalf("cached lookup made %d round trips", n)
	}
	look("a", "d/nothing")
	if n := look("a", "d/nothing"); n != 0 {
		t.Fatal("never-existed answer not cached")
	}
	if n := look("b", "d/ascii"); n == 0 {
		t.Fatal("stream b was served stream a's cached answer")
	}
	if n := look("", "d/ascii") + look("", "d/ascii"); n < 2 {
		t.Fatal("anonymous lookups were cached")
	}
	// A new block changes what the answer could be.
	nc.g.Chain(1)
	b.AddBlocks(nc.g.Tip())
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := look("a", "d/ascii"); n == 0 {
		t.Fatal("cache survived a new block")
	}
}

// BenchmarkNameShow measures one verified lookup on loopback against a
// server that answers at once (cache off), per protocol.
func BenchmarkNameShow(b *testing.B) {
	nc := buildNamedChain(53)
	for _, proto := range []string{"1.4.3", "1.4.2"} {
		b.Run(proto, func(b *testing.B) {
			srv, err := electrumxtest.NewServer(nc.backend(), electrumxtest.Options{MaxProtocol: proto})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			p := &headers.RegTestParams
			store, err := headers.OpenStore(filepath.Join(b.TempDir(), "h.db"), p, checkpoints.ForNetwork(p).Anchor(), headers.StoreOptions{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			pool := electrumx.NewPool(electrumx.Config{})
			defer pool.Close()
			e, _ := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: checkpoints.ForNetwork(p),
				Store: store, Servers: []electrumx.Server{srv.Address()}, Router: tor.NewRouter(tor.Direct),
				Pool: pool, Confirmations: 3, QueryServers: 1, NoCache: true, CatchUpAfter: time.Hour})
			defer e.Close()
			ctx := context.Background()
			if err := e.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			opts := spv.LookupOptions{StreamID: "bench"}
			if _, err := e.NameShow(ctx, []byte("d/ascii"), opts); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.NameShow(ctx, []byte("d/ascii"), opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(srv.RoundTrips())/float64(b.N+1), "lines/lookup")
		})
	}
}
