package spv_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// TestClockBehind: with this computer's clock hours behind, the server's
// newest headers are "from the future". As in Core, that does not make
// the server a liar: the chain stops below the first such header, keeping
// everything before it (even within one chunk), lookups go on, and the
// warning lasts until the clock allows the rest.
func TestClockBehind(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 77)
	g.Chain(40)
	backend := electrumxtest.NewBackend()
	backend.AddBlocks(g.Blocks[:40]...) // 0..39; 40 comes later
	srv, err := electrumxtest.NewServer(backend, electrumxtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	var mu sync.Mutex
	var now time.Time
	// setClock makes height h the last header within two hours of now.
	setClock := func(h int) {
		mu.Lock()
		now = time.Unix(int64(g.Blocks[h].Info.Time)-p.MaxFutureBlockTime, 0)
		mu.Unlock()
	}
	e, _ := newEngineConfig(t, spv.Config{Params: p, Servers: []electrumx.Server{srv.Address()}, QueryServers: 1,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})

	for _, step := range []struct {
		what      string
		clockAt   int
		wantTip   int32
		wantAlarm bool
		newBlock  bool // the server gets block 40, announced, not fetched
	}{
		{"within a chunk: cut below 31", 30, 30, true, false},
		{"clock right", 39, 39, false, false},
		{"announced tip from the future", 39, 39, true, true},
		{"same clock, asked again", 39, 39, true, false},
		{"clock right again", 40, 40, false, false},
	} {
		setClock(step.clockAt)
		if step.newBlock {
			backend.AddBlocks(g.Blocks[40])
		}
		fetches := srv.Requests("blockchain.block.headers")
		if err := e.Sync(context.Background()); err != nil {
			t.Fatalf("%s: sync: %v", step.what, err)
		}
		st := e.State()
		if st.Height != step.wantTip || !st.Synced {
			t.Fatalf("%s: tip %d (synced %v), want %d", step.what, st.Height, st.Synced, step.wantTip)
		}
		if got := st.Warning == spv.ErrHeaderFromFuture.Error(); got != step.wantAlarm {
			t.Fatalf("%s: warning %q", step.what, st.Warning)
		}
		if step.wantTip == 39 && step.wantAlarm && srv.Requests("blockchain.block.headers") != fetches {
			t.Fatalf("%s: the announced tip was fetched, not taken from the announcement", step.what)
		}
		if d := e.Demoted(); len(d) != 0 {
			t.Fatalf("%s: server demoted for our clock: %v", step.what, d)
		}
	}
}
