package spv_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// TestFollow keeps syncing as the server announces new tips, and stops
// when its context ends.
func TestFollow(t *testing.T) {
	nc := buildNamedChain(81)
	b := nc.backend()
	srv := startServer(t, b, "1.4.3")
	e, store := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Follow(ctx); close(done) }()
	waitFor := func(height int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for store.Tip().Height < height {
			if time.Now().After(deadline) {
				t.Fatalf("tip %d, waiting for %d", store.Tip().Height, height)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(50)
	for i := 0; i < 3; i++ {
		nc.g.Chain(1)
		b.AddBlocks(nc.g.Tip())
		// The subscription may not be registered yet: announce until seen.
		want := nc.g.Tip().Height
		deadline := time.Now().Add(10 * time.Second)
		for store.Tip().Height < want && time.Now().Before(deadline) {
			srv.NotifyTip()
			time.Sleep(20 * time.Millisecond)
		}
		waitFor(want)
	}
	if store.Tip().Hash != nc.g.Tip().Hash {
		t.Fatal("followed to another tip")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not stop with its context")
	}
}

// TestIdleAfterSync: without Follow, the sync connection (whose header
// subscription would make the server announce every block) is closed
// once the sync is done.
func TestIdleAfterSync(t *testing.T) {
	nc := buildNamedChain(82)
	srv := startServer(t, nc.backend(), "1.4.3")
	e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{srv.Address()}, 3, 1)
	defer e.Close()
	syncEngine(t, e)
	deadline := time.Now().Add(5 * time.Second)
	for srv.OpenConns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after sync", srv.OpenConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneNewTip: when the server is one block ahead, the header its
// subscription announced is verified and stored without another request;
// a tip header that breaks a rule is a lie; one that does not parse is
// fetched again like any other.
func TestOneNewTip(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 77)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	g.Chain(100)
	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	e, store := openChunkedSync(t, filepath.Join(t.TempDir(), "headers.db"), srv)
	defer store.Close()
	defer e.Close()
	ctx := syncEngine(t, e)

	// One good block: stored from the announcement alone.
	b.AddBlocks(g.Chain(1)...)
	before := srv.Requests("blockchain.block.headers")
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d, want %d", tip.Height, g.Tip().Height)
	}
	if n := srv.Requests("blockchain.block.headers") - before; n != 0 {
		t.Errorf("%d header requests for the announced block", n)
	}

	// An announcement that does not parse: the block is fetched.
	b.AddBlocks(g.Chain(1)...)
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.headers.subscribe" {
			return &electrumxtest.Action{Result: map[string]any{"hex": "0011", "height": g.Tip().Height}}
		}
		return nil
	})
	before = srv.Requests("blockchain.block.headers")
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.SetHook(nil)
	if tip := store.Tip(); tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d, want %d", tip.Height, g.Tip().Height)
	}
	if n := srv.Requests("blockchain.block.headers") - before; n != 1 {
		t.Errorf("%d header requests after a bad announcement, want 1", n)
	}

	// A block that breaks a rule: a lie, and our tip stays.
	good := store.Tip()
	b.AddBlocks(g.Next(chaingen.Spec{BadParentRoot: true}))
	err := e.Sync(ctx)
	var le *spv.LieError
	if !errors.As(err, &le) || !strings.Contains(le.Reason, fmt.Sprintf("tip header %d", good.Height+1)) {
		t.Fatalf("got %v, want a lie about tip header %d", err, good.Height+1)
	}
	if tip := store.Tip(); tip.Height != good.Height || tip.Hash != good.Hash {
		t.Fatalf("tip moved to %d %s", tip.Height, tip.Hash)
	}
}
