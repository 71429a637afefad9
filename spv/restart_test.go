package spv_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// TestResumeAfterInterruptedSync stops a sync in the middle (as a killed
// daemon would), reopens the store and checks that the next sync asks
// only for headers above what was stored.
func TestResumeAfterInterruptedSync(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 61)
	g.MinCoinbase, g.MaxCoinbase = 200, 300
	g.Chain(6 * 2016)
	srv := startServer(t, electrumxtest.FromChain(g), "1.4.3")
	path := filepath.Join(t.TempDir(), "headers.db")

	open := func() (*spv.Engine, *headers.Store) { return openChunkedSync(t, path, srv) }

	// First run: interrupted while the third chunk is being served.
	e1, store1 := open()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var chunks atomic.Int32
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.headers" && chunks.Add(1) == 3 {
			cancel()
			return &electrumxtest.Action{Delay: 200 * time.Millisecond}
		}
		return nil
	})
	if err := e1.Sync(ctx); err == nil {
		t.Fatal("interrupted sync reported success")
	}
	e1.Close()
	stored := store1.Tip().Height
	store1.Close()
	if stored != 2*2016 {
		t.Fatalf("stored %d headers before the interruption, want %d", stored, 2*2016)
	}

	// Second run resumes.
	srv.SetHook(nil)
	before := len(srv.Log())
	e2, store2 := open()
	defer store2.Close()
	defer e2.Close()
	syncEngine(t, e2)
	if tip := store2.Tip(); tip.Hash != g.Tip().Hash {
		t.Fatalf("resumed sync ended at %d", tip.Height)
	}
	for _, r := range srv.Log()[before:] {
		if r.Method != "blockchain.block.headers" {
			continue
		}
		start, _ := strconv.Atoi(string(r.Params[0]))
		if int32(start) <= stored {
			t.Fatalf("re-downloaded from %d although %d headers were stored", start, stored)
		}
	}
}

// openChunkedSync opens the regtest store at path and an engine on srv
// that syncs one 2016-header chunk at a time, so that a test knows which
// request fetches what.
func openChunkedSync(t *testing.T, path string, srv *electrumxtest.Server) (*spv.Engine, *headers.Store) {
	t.Helper()
	return newEngineAt(t, path, headers.StoreOptions{}, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{srv.Address()}, Pipeline: 1, ChunkSize: 2016, QueryServers: 1})
}
