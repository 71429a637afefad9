package spv_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/testvectors"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// replayBackend serves the recording (skipping the test when the
// vectors are absent).
func replayBackend(t testing.TB) (*electrumxtest.Recording, *electrumxtest.Backend) {
	t.Helper()
	rec, err := electrumxtest.ReadRecording(testvectors.Path(t, "regtest-recording.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.Backend()
	if err != nil {
		t.Fatal(err)
	}
	return rec, b
}

// newEngine makes an engine on a fresh regtest store talking directly
// (proxy none) to the given fake servers.
func newEngine(t *testing.T, p *headers.Params, servers []electrumx.Server, conf int32, k int) (*spv.Engine, *headers.Store) {
	t.Helper()
	return newEngineConfig(t, spv.Config{Params: p, Servers: servers, Confirmations: conf, QueryServers: k})
}

// newEngineConfig completes cfg with what every test engine has: a fresh
// store from cfg's checkpoint (the network's unless cfg sets one), a pool
// pinning in memory, direct connections and regtest addresses (unless cfg
// sets them).
func newEngineConfig(t *testing.T, cfg spv.Config) (*spv.Engine, *headers.Store) {
	t.Helper()
	return newEngineAt(t, "", headers.StoreOptions{NoSync: true}, cfg)
}

// newEngineAt is newEngineConfig on the store at path (a fresh temporary
// one if empty) opened with opts. Engine, store and pool are closed when
// the test ends; a test that reopens the store closes them first itself.
func newEngineAt(t *testing.T, path string, opts headers.StoreOptions, cfg spv.Config) (*spv.Engine, *headers.Store) {
	t.Helper()
	if cfg.Checkpoint == (checkpoints.Checkpoint{}) {
		cfg.Checkpoint = checkpoints.ForNetwork(cfg.Params)
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "headers.db")
	}
	store, err := headers.OpenStore(path, cfg.Params, cfg.Checkpoint.Anchor(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if cfg.Pool == nil {
		cfg.Pool = electrumx.NewPool(electrumx.Config{Pins: &electrumx.PinStore{}})
		t.Cleanup(cfg.Pool.Close)
	}
	cfg.Store = store
	if cfg.Router == nil {
		cfg.Router = tor.NewRouter(tor.Direct)
	}
	if cfg.Addresses == (spv.AddressParams{}) {
		cfg.Addresses = spv.RegTestAddresses
	}
	e, err := spv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, store
}

// TestGoldenRegtestRecording: ncspv syncs the 5,284 recorded AuxPoW
// headers from genesis and its name_show for every recorded name equals
// Namecoin Core's recorded answer field by field (with 1 confirmation, as
// Core counts), the -4 cases included; over protocol 1.4.3 (one round
// trip) and 1.4.2 (history, then a batch).
func TestGoldenRegtestRecording(t *testing.T) {
	rec, backend := replayBackend(t)
	names := rec.Names
	for _, mode := range []struct {
		proto   string
		sampled bool
	}{{"1.4.3", false}, {"1.4.2", false}, {"1.4.3", true}} {
		proto := mode.proto
		name := proto
		if mode.sampled {
			name += "/sampled"
		}
		t.Run(name, func(t *testing.T) {
			srv, err := electrumxtest.NewServer(backend, electrumxtest.Options{MaxProtocol: proto, Pad: true})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams, Servers: []electrumx.Server{srv.Address()},
				Confirmations: 1, QueryServers: 1, SampledSync: mode.sampled, NoFullVerify: true})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := e.Sync(ctx); err != nil {
				t.Fatalf("sync: %v", err)
			}
			if tip := store.Tip(); tip.Height != rec.TipHeight || tip.Hash.String() != rec.TipHash {
				t.Fatalf("tip %d %v, recorded %d %s", tip.Height, tip.Hash, rec.TipHeight, rec.TipHash)
			}
			for name, rn := range names {
				r, err := e.NameShow(ctx, []byte(name), spv.LookupOptions{StreamID: "golden"})
				if rn.CoreError != nil {
					var ne *spv.NameError
					if !errors.As(err, &ne) || err.Error() != rn.CoreError.Message {
						t.Errorf("%s: Core said %d %q, we said %v", name, rn.CoreError.Code, rn.CoreError.Message, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				compareWithCore(t, name, r.JSON(spv.EncodingASCII, spv.EncodingASCII), rn.ShowResult)
			}
			want := map[bool]string{false: "fully verified", true: "sampled"}[mode.sampled]
			if st := e.State(); st.Verification != want {
				t.Errorf("verification %q, want %q", st.Verification, want)
			}
		})
	}
}

func compareWithCore(t *testing.T, name string, ours spv.NameShowJSON, core json.RawMessage) {
	t.Helper()
	var want, got map[string]any
	if err := json.Unmarshal(core, &want); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ours)
	json.Unmarshal(b, &got)
	delete(want, "ismine") // Core adds it only with a wallet loaded
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s: field %s: ours %v, Core %v", name, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: we return field %s that Core does not", name, k)
		}
	}
}

// BenchmarkSyncRegtestRecording syncs the 5,284 real AuxPoW headers of
// the recording (Namecoin Core regtest as ElectrumX 1.20 served them, 294
// bytes each on average) from genesis into a fresh store, fsync on, from
// a fake server in this process that pads like ElectrumX 1.20. It is the
// real-data counterpart of "ncspv bench", whose generated headers carry
// 1-2 KB parent coinbases.
func BenchmarkSyncRegtestRecording(b *testing.B) {
	_, be := replayBackend(b)
	srv, err := electrumxtest.NewServer(be, electrumxtest.Options{Pad: true})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p := &headers.RegTestParams
	cp := checkpoints.ForNetwork(p)
	dir := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("h%d.db", i))
		store, err := headers.OpenStore(path, p, cp.Anchor(), headers.StoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pool := electrumx.NewPool(electrumx.Config{})
		e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
			Servers: []electrumx.Server{srv.Address()}, Router: tor.NewRouter(tor.Direct), Pool: pool, QueryServers: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		err = e.Sync(ctx)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if tip := store.Tip(); tip.Height != be.Tip() {
			b.Fatalf("synced to %d of %d", tip.Height, be.Tip())
		}
		e.Close()
		pool.Close()
		store.Close()
		os.Remove(path)
		b.StartTimer()
	}
	b.ReportMetric(float64(be.Tip())*float64(b.N)/b.Elapsed().Seconds(), "headers/s")
}
