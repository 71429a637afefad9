package spv_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

const asciiValue = `{"ip":"10.0.0.2","tor":"example.onion"}`

// blockLookups makes srv hold every name lookup until release is closed.
func blockLookups(srv *electrumxtest.Server, release <-chan struct{}) {
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.name.get_value_proof" {
			<-release
		}
		return nil
	})
}

// TestCancelledLookupIsCached: a caller that gives up before the server
// answers (ncprop279 after 1.5 s) does not throw the lookup away: it is
// verified and cached for that stream ID, and the retry is answered
// without asking any server.
func TestCancelledLookupIsCached(t *testing.T) {
	nc := buildNamedChain(41)
	srv := startServer(t, nc.backend(), "1.4.3")
	e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
	syncEngine(t, e)
	release := make(chan struct{})
	blockLookups(srv, release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: "tor-stream-7"})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the request is at the server
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(release)
	time.Sleep(time.Second) // the background lookup verifies and caches
	before := srv.Requests("")
	r, err := e.NameShow(context.Background(), []byte("d/ascii"), spv.LookupOptions{StreamID: "tor-stream-7"})
	if err != nil || string(r.Value) != asciiValue {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if n := srv.Requests("") - before; n != 0 {
		t.Fatalf("the retry made %d requests; the cancelled lookup's answer should have been cached", n)
	}
}

// TestDeadlineDoesNotWaitForSlowServer: with two servers, one of which
// holds its answer, the lookup answers at the deadline with the other's
// verified answer; the slow server is then left out.
func TestDeadlineDoesNotWaitForSlowServer(t *testing.T) {
	nc := buildNamedChain(42)
	fast := startServer(t, nc.backend(), "1.4.3")
	slow := startServer(t, nc.backend(), "1.4.3")
	e, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{fast.Address(), slow.Address()}, Confirmations: 3, QueryServers: 2,
		LookupDeadline: 100 * time.Millisecond})
	syncEngine(t, e)
	release := make(chan struct{})
	defer close(release)
	blockLookups(slow, release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Were the lookup to wait for the slow server, it would wait for good.
	r, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: "s"})
	if err != nil || string(r.Value) != asciiValue {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = e.NameShow(ctx, []byte("d/nothing"), spv.LookupOptions{StreamID: "s"})
	var ne *spv.NameError
	if !errors.As(err, &ne) {
		t.Fatalf("missing name: %+v %v", r, err)
	}
}

// TestAnonymousLookupsShareACircuit: lookups without a stream ID (ncdns,
// scripts) reuse one connection per server instead of opening one each,
// and share one cache.
func TestAnonymousLookupsShareACircuit(t *testing.T) {
	nc := buildNamedChain(43)
	srv := startServer(t, nc.backend(), "1.4.3")
	e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
	ctx := syncEngine(t, e)
	accepted := srv.Accepted()
	for _, name := range []string{"d/ascii", "d/fresh", "d/nothing", "d/ascii"} {
		e.NameShow(ctx, []byte(name), spv.LookupOptions{})
	}
	if n := srv.Accepted() - accepted; n != 1 {
		t.Fatalf("%d connections for 4 anonymous lookups, want 1", n)
	}
	if n := srv.Requests("blockchain.name.get_value_proof"); n != 3 {
		t.Fatalf("%d lookups asked for 4 anonymous lookups of 3 names, want 3 (one cached)", n)
	}
}

// TestLookupBringsHeaders: new blocks come with the lookup, on its own
// circuit, verified and stored; the sync circuit is not woken at the
// lookup's instant (no request but the lookup's batch reaches the server).
func TestLookupBringsHeaders(t *testing.T) {
	nc := buildNamedChain(44)
	b := electrumxtest.FromChain(&chaingen.Generator{Params: nc.g.Params, Blocks: nc.g.Blocks[:46]})
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")
	e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{srv.Address()}, Confirmations: 3, QueryServers: 1,
		Now: func() time.Time { return time.Now().Add(time.Hour) }}) // every lookup finds the chain stale
	ctx := syncEngine(t, e)
	b.AddBlocks(nc.g.Blocks[46:]...)
	b.IndexNames()
	before := len(srv.Log())
	if _, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: "s"}); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != nc.g.Tip().Hash {
		t.Fatalf("tip %d after the lookup, want %d", tip.Height, nc.g.Tip().Height)
	}
	var methods []string
	for _, r := range srv.Log()[before:] {
		if r.Method != "server.version" { // the lookup's and its spare circuits'
			methods = append(methods, r.Method)
		}
	}
	if fmt.Sprint(methods) != "[blockchain.name.get_value_proof blockchain.block.headers]" {
		t.Fatalf("requests during the lookup: %v", methods)
	}
}

// TestNoHold: ElectrumX holds replies under 1 KiB for a second (1.20
// after a connection's first 1 KiB, 1.18 always). A lookup's batch carries
// headers enough to be over 1 KiB, so neither a found name nor a missing
// one waits; only 1.18's server.version on a new connection does, once
// (lookups without a stream ID keep their connection).
func TestNoHold(t *testing.T) {
	for _, o := range []electrumxtest.Options{
		{Pad: true, HoldSmall: time.Second},
		{Pad: true, HoldSmall: time.Second, HoldFromStart: true},
		{Pad: true, HoldSmall: time.Second, MaxProtocol: "1.4.2"},
	} {
		nc := buildNamedChain(45)
		srv, err := electrumxtest.NewServer(nc.backend(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
		ctx := syncEngine(t, e)
		held := srv.Held()
		for _, name := range []string{"d/ascii", "d/nothing", "d/fresh", "d/none", "d/ascii2"} {
			e.NameShow(ctx, []byte(name), spv.LookupOptions{})
		}
		want := 0
		if o.HoldFromStart {
			want = 1 // server.version of the anonymous connection
		}
		if n := srv.Held() - held; n != want {
			t.Errorf("1.18 timer %v, protocol %q: %d replies held during 5 lookups, want %d", o.HoldFromStart, o.MaxProtocol, n, want)
		}
	}
}

// TestLateServerDemoted: a server that answers after the deadline, when
// another answered in time, is asked last from then on, and the next
// lookups do not wait for it.
func TestLateServerDemoted(t *testing.T) {
	nc := buildNamedChain(46)
	fast := startServer(t, nc.backend(), "1.4.3")
	slow := startServer(t, nc.backend(), "1.4.3")
	slow.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.name.get_value_proof" {
			return &electrumxtest.Action{Delay: 400 * time.Millisecond}
		}
		return nil
	})
	e, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{fast.Address(), slow.Address()}, Confirmations: 3, QueryServers: 2,
		LookupDeadline: 100 * time.Millisecond})
	ctx := syncEngine(t, e)
	if _, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: "s"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Demoted()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d := e.Demoted(); len(d) != 1 || d[0] != slow.Address().String() {
		t.Fatalf("demoted %v, want the late server", d)
	}
	before := slow.Requests("blockchain.name.get_value_proof")
	if _, err := e.NameShow(ctx, []byte("d/fresh"), spv.LookupOptions{StreamID: "s2"}); err != nil {
		t.Fatal(err)
	}
	if slow.Requests("blockchain.name.get_value_proof") != before {
		t.Fatal("the late server was asked again while the other is good")
	}
}
