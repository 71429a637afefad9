package spv_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// TestReorgDuringSync: the server switches to a heavier branch in the
// middle of our sync, forking below what this sync has already stored.
// The fork must be looked for from our tip down, so that only the new
// branch is fetched, not everything this sync had stored.
func TestReorgDuringSync(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 71)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	g.Chain(3000)
	const fork = 1500
	y := g.Fork(fork, 72)
	y.Chain(1700) // heavier: regtest blocks all carry the same work

	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	var switched atomic.Bool
	var switchedAt atomic.Int64 // index in the server's log
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		// The first chunk (1-2016) comes from the first branch; the
		// request for the second finds the server on the other one.
		if r.Method == "blockchain.block.headers" && len(r.Params) > 0 && string(r.Params[0]) == "2017" && !switched.Load() {
			b.AddBlocks(y.Blocks[fork+1:]...)
			switchedAt.Store(int64(len(srv.Log())))
			switched.Store(true)
		}
		return nil
	})
	e, store := openChunkedSync(t, filepath.Join(t.TempDir(), "headers.db"), srv)
	defer store.Close()
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !switched.Load() {
		t.Fatal("the server never switched branches")
	}
	// That sync stopped at the tip the server announced when it began
	// (3000); the next one sees 3200.
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != y.Tip().Hash {
		t.Fatalf("synced to %d %s, want the heavier branch's tip %d", tip.Height, tip.Hash, y.Tip().Height)
	}
	// After the switch: single headers to find the fork (from our tip,
	// 2016, down), then the branch above the fork, nothing below it.
	var firstProbe int64 = -1
	for _, r := range srv.Log()[switchedAt.Load():] {
		var start int64
		if len(r.Params) == 0 || json.Unmarshal(r.Params[0], &start) != nil {
			continue
		}
		switch r.Method {
		case "blockchain.block.header":
			if firstProbe < 0 {
				firstProbe = start
			}
		case "blockchain.block.headers":
			if start <= fork {
				t.Errorf("headers from %d fetched again (the fork is at %d)", start, fork)
			}
		}
	}
	if firstProbe != 2016 {
		t.Errorf("the fork search began at %d, want our tip 2016", firstProbe)
	}
}

// TestLyingCompetingBranch: a server that switches to a "heavier" branch
// with a header that breaks a rule is caught lying; we keep our chain.
func TestLyingCompetingBranch(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 73)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	g.Chain(3000)
	const fork = 1500
	y := g.Fork(fork, 74)
	y.Chain(9)
	y.Next(chaingen.Spec{BadParentRoot: true}) // 1510: AuxPoW does not commit to its coinbase
	y.Chain(1700)

	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	var switched atomic.Bool
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.headers" && len(r.Params) > 0 && string(r.Params[0]) == "2017" && !switched.Load() {
			b.AddBlocks(y.Blocks[fork+1:]...)
			switched.Store(true)
		}
		return nil
	})
	e, store := openChunkedSync(t, filepath.Join(t.TempDir(), "headers.db"), srv)
	defer store.Close()
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Sync(ctx)
	var le *spv.LieError
	if !errors.As(err, &le) || !strings.Contains(le.Reason, "competing branch") {
		t.Fatalf("got %v, want a lie about the competing branch", err)
	}
	if !strings.Contains(le.Reason, "at height 1510") {
		t.Errorf("lie %q does not name the bad header at 1510", le.Reason)
	}
	if tip := store.Tip(); tip.Height != 2016 || tip.Hash != g.Blocks[2016].Hash {
		t.Fatalf("tip %d %s, want our own block 2016", tip.Height, tip.Hash)
	}
}
