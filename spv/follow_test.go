package spv_test

import (
	"context"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
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
