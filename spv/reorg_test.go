package spv_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
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
	switchedAt := switchOnSecondChunk(srv, b, y.Blocks[fork+1:])
	e, store := openChunkedSync(t, filepath.Join(t.TempDir(), "headers.db"), srv)
	defer store.Close()
	defer e.Close()
	ctx := syncEngine(t, e)
	if switchedAt() < 0 {
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
	// After the switch: the fork search asks for windows of headers from
	// our tip (2016) down, each below the one before, and then only the
	// branch above the fork is fetched: every request that starts at or
	// below the fork is a search window.
	first := true
	below := int64(2017) // the search's lowest height so far
	for _, r := range srv.Log()[switchedAt():] {
		if r.Method != "blockchain.block.headers" {
			continue
		}
		var start, count int64
		if len(r.Params) < 2 || json.Unmarshal(r.Params[0], &start) != nil || json.Unmarshal(r.Params[1], &count) != nil {
			t.Fatalf("block.headers params %s", r.Params)
		}
		last := start + count - 1
		if first && last != 2016 {
			t.Errorf("the fork search began with headers %d-%d, want a window ending at our tip 2016", start, last)
		}
		first = false
		if start <= fork {
			if last >= below {
				t.Errorf("headers %d-%d fetched again (the fork is at %d)", start, last, fork)
			}
			below = start
		}
	}
	if first {
		t.Error("no headers were asked for after the switch")
	}
}

// switchOnSecondChunk moves the server to branch (blocks forking below
// 2016) when a sync that fetches 2016 headers at a time asks for its
// second chunk: the first chunk comes from the old branch. The returned
// function gives the index in the server's log from which requests were
// answered from the new branch, or -1 before the switch.
func switchOnSecondChunk(srv *electrumxtest.Server, b *electrumxtest.Backend, branch []*chaingen.Block) func() int {
	var at atomic.Int64
	at.Store(-1)
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.headers" && len(r.Params) > 0 && string(r.Params[0]) == "2017" && at.Load() < 0 {
			b.AddBlocks(branch...)
			at.Store(int64(len(srv.Log())))
		}
		return nil
	})
	return func() int { return int(at.Load()) }
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
	switchOnSecondChunk(srv, b, y.Blocks[fork+1:])
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

// TestForkSearchNotHeld: ElectrumX 1.20 holds every reply under 1 KiB for
// up to a second once a connection has sent 1 KiB. With headers as small
// as regtest's, a reply of one header is under 1 KiB, so a fork search by
// single headers would wait a second per probe. A shallow reorg must be
// found and followed with no such reply: the only held reply is each new
// connection's header subscription.
func TestForkSearchNotHeld(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 75)
	g.MinCoinbase, g.MaxCoinbase, g.Slim = 60, 94, true
	g.Chain(300)
	y := g.Fork(298, 76)
	y.Chain(3)

	b := electrumxtest.FromChain(g)
	srv, err := electrumxtest.NewServer(b, electrumxtest.Options{Pad: true, HoldSmall: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e, store := openChunkedSync(t, filepath.Join(t.TempDir(), "headers.db"), srv)
	defer store.Close()
	defer e.Close()
	ctx := syncEngine(t, e)
	b.AddBlocks(y.Blocks[299:]...)
	held, subs, logged := srv.Held(), srv.Requests("blockchain.headers.subscribe"), len(srv.Log())
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != y.Tip().Hash {
		t.Fatalf("tip %d %s, want the new branch's %d", tip.Height, tip.Hash, y.Tip().Height)
	}
	for _, r := range srv.Log()[logged:] {
		if r.Method == "blockchain.block.header" {
			t.Errorf("single header %s asked for", r.Params)
		}
	}
	if n, want := srv.Held()-held, srv.Requests("blockchain.headers.subscribe")-subs; n != want {
		t.Errorf("%d replies held during the reorg, want %d (the subscriptions)", n, want)
	}
}

// TestDeepFork: with the default request sizes, a fork 2000 blocks below
// our tip is found by windows that double from 32 headers up to one sync
// request's 126 (what the sync connection's reply cap is made for), and
// no request asks for more than that.
func TestDeepFork(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 78)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	g.Chain(3000)
	const fork = 1000
	y := g.Fork(fork, 79)
	y.Chain(2100)

	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	e, store := newEngine(t, p, []electrumx.Server{srv.Address()}, 1, 1)
	defer e.Close()
	ctx := syncEngine(t, e)
	b.AddBlocks(y.Blocks[fork+1:]...)
	logged := len(srv.Log())
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != y.Tip().Hash {
		t.Fatalf("tip %d %s, want the heavier branch's %d", tip.Height, tip.Hash, y.Tip().Height)
	}
	// The requests: the new headers above our tip (which do not connect),
	// the search windows, then the branch from fork+1.
	var windows []int64
	stage := 0
	for _, r := range srv.Log()[logged:] {
		if r.Method != "blockchain.block.headers" {
			continue
		}
		var start, count int64
		json.Unmarshal(r.Params[0], &start)
		json.Unmarshal(r.Params[1], &count)
		if count > spv.DefaultChunkSize {
			t.Errorf("headers %d-%d asked for at once", start, start+count-1)
		}
		switch {
		case stage == 0 && start == 3001:
			stage = 1
		case start == fork+1:
			stage = 2
		case stage == 1:
			windows = append(windows, count)
		}
	}
	want := []int64{32, 64}
	for len(want) < 18 { // 32 + 64 + 16 x 126 = 2112 reach 1000 from 3000
		want = append(want, spv.DefaultChunkSize)
	}
	if fmt.Sprint(windows) != fmt.Sprint(want) {
		t.Errorf("fork search windows %v, want %v", windows, want)
	}
}

// minDifficultyParams is regtest with a genesis harder than the proof-of-
// work limit, so that, by testnet's minimum-difficulty rule, a block dated
// more than 20 minutes after its parent carries far less work than one on
// time: branches of equal or fewer blocks can have more work.
func minDifficultyParams() *headers.Params {
	p := headers.RegTestParams
	p.Name = "regtest-mindiff"
	p.GenesisHeader.Bits = 0x2000ffff // 128x the limit's work
	p.GenesisHash = p.GenesisHeader.BlockHash()
	return &p
}

// TestReorgToMoreWorkNotHigher: Core follows the chain with the most work,
// not the most blocks. A server that moves to a branch with fewer blocks
// but more work is followed; one on a branch of as many blocks with less
// work is not, and is not called a liar.
func TestReorgToMoreWorkNotHigher(t *testing.T) {
	p := minDifficultyParams()
	g := chaingen.New(p, 81)
	g.Chain(10)
	light := g.Fork(10, 82)
	for range 6 { // six late blocks: minimum difficulty each
		light.Next(chaingen.Spec{Time: light.Tip().Info.Time + 3600})
	}
	heavy := g.Fork(10, 83)
	heavy.Chain(4) // four blocks on time: more work, two fewer blocks
	if heavy.Tip().Info.Bits == light.Tip().Info.Bits {
		t.Fatal("test set-up: both branches carry the same bits")
	}

	b := electrumxtest.FromChain(light)
	srv := startServer(t, b, "1.4.3")
	e, store := newEngine(t, p, []electrumx.Server{srv.Address()}, 1, 1)
	syncEngine(t, e)
	if tip := store.Tip(); tip.Hash != light.Tip().Hash {
		t.Fatalf("first sync: tip %d", tip.Height)
	}

	b.AddBlocks(heavy.Blocks[11:]...) // the server reorganizes to the heavier, shorter branch
	syncEngine(t, e)
	if tip := store.Tip(); tip.Hash != heavy.Tip().Hash || tip.Height != 14 {
		t.Fatalf("after the server moved to a shorter branch with more work: tip %d %v, want 14 %v",
			tip.Height, tip.Hash, heavy.Tip().Hash)
	}
	if err := store.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}

	// A branch of as many blocks with less work: kept off, and the server
	// is not blamed for it.
	level := g.Fork(10, 84)
	for range 4 {
		level.Next(chaingen.Spec{Time: level.Tip().Info.Time + 3600})
	}
	b.AddBlocks(level.Blocks[11:]...)
	syncEngine(t, e)
	if tip := store.Tip(); tip.Hash != heavy.Tip().Hash {
		t.Fatalf("moved to the branch with less work: tip %d", tip.Height)
	}
	if d := e.Demoted(); len(d) != 0 {
		t.Fatalf("a server on a branch with less work was demoted: %v", d)
	}
}
