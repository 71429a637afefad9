package spv_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// sampledTip is a chain long enough for a sampled sync from genesis: the
// first 3,984 headers come in 80-byte form, the newest 2016 in full.
const sampledTip = 6000

// longExpiry is regtest with mainnet's name expiry, so that a name
// updated deep in the 80-byte part of the chain is still live.
func longExpiry() *headers.Params {
	p := headers.RegTestParams
	p.NameExpirationDepth = 36000
	return &p
}

// sampledChain is a chain of sampledTip blocks carrying d/deep (updated at
// 1000, in the 80-byte part) and d/fresh (at 5990, in the full part). The
// heights in fake get a parent hash that misses its target: headers
// without valid work.
func sampledChain(seed uint64, fake map[int32]bool) *chaingen.Generator {
	p := longExpiry()
	g := chaingen.New(p, seed)
	g.Slim = true
	ops := map[int32]nameAt{
		1000: {name: "d/deep", value: `{"ip":"10.0.0.1"}`, op: chaingen.OpFirstUpdate},
		5990: {name: "d/fresh", value: `{"ip":"10.0.0.2"}`, op: chaingen.OpFirstUpdate},
	}
	for h := int32(1); h <= sampledTip; h++ {
		spec := chaingen.Spec{WeakPoW: fake[h]}
		if o, ok := ops[h]; ok {
			spec.Txs = [][]byte{chaingen.NameTx(o.op, []byte(o.name), []byte(o.value), [20]byte{1}, 0, 1000)}
		}
		g.Next(spec)
	}
	return g
}

type sampledOpts struct {
	path         string
	noFullVerify bool
	logs         *lockedBuffer
	keep         int32 // headers the store keeps (0: its default)
}

// sampledEngine makes a sampled-sync engine on servers, its store at
// o.path (a temporary one if empty).
func sampledEngine(t *testing.T, servers []electrumx.Server, o sampledOpts) (*spv.Engine, *headers.Store) {
	t.Helper()
	var log *slog.Logger
	if o.logs != nil {
		log = slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return newEngineAt(t, o.path, headers.StoreOptions{NoSync: true, KeepHeaders: o.keep}, spv.Config{
		Params: longExpiry(), Servers: servers, Confirmations: 1, QueryServers: 1,
		RequestTimeout: 10 * time.Second, SampledSync: true, NoFullVerify: o.noFullVerify, Logger: log})
}

// bareRequests counts the 80-byte chunk requests (blockchain.block.headers
// with a cp_height) and the full ones.
func bareRequests(srv *electrumxtest.Server) (bare, full int) {
	for _, r := range srv.Log() {
		if r.Method == "blockchain.block.headers" {
			if len(r.Params) == 3 {
				bare++
			} else {
				full++
			}
		}
	}
	return bare, full
}

// TestSampledSync: a long catch-up takes 80-byte headers, samples them,
// answers for a name whose proof rests on a block in the 80-byte part
// (its full header checked first), reports "sampled", and the state is
// the same as a full sync's.
func TestSampledSync(t *testing.T) {
	g := sampledChain(181, nil)
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{noFullVerify: true})
	ctx := syncEngine(t, e)
	if tip := store.Tip(); tip.Height != sampledTip || tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d %v, want %d %v", tip.Height, tip.Hash, sampledTip, g.Tip().Hash)
	}
	st := e.State()
	if st.Verification != "sampled" || st.VerifiedHeight != 0 {
		t.Fatalf("state %+v, want sampled from 0", st)
	}
	bare, full := bareRequests(srv)
	if bare == 0 || full == 0 {
		t.Fatalf("%d 80-byte and %d full chunk requests; want both", bare, full)
	}
	samples := srv.Requests("blockchain.block.header")
	if samples < 300 {
		t.Fatalf("%d full headers sampled, want hundreds", samples)
	}
	for _, name := range []string{"d/deep", "d/fresh"} {
		r, err := e.NameShow(ctx, []byte(name), spv.LookupOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(string(r.Value), "10.0.0.") {
			t.Fatalf("%s: value %q", name, r.Value)
		}
	}
	if err := store.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}

// TestSampledFakeWorkCaught: a server whose 80-byte chain hides headers
// without valid work (5 % of them, at random heights) is caught by the
// sample: the sync fails as a lie, the headers it sent are dropped, and
// nothing is answered from them. Repeated over several chains; each miss
// would have probability (1 - 0.025)^541 < 2^-19.
func TestSampledFakeWorkCaught(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		fake := map[int32]bool{}
		for len(fake) < 200 { // 5 % of the 3,984 80-byte headers
			fake[1+rng.Int32N(3984)] = true
		}
		g := sampledChain(200+seed, fake)
		srv := startServer(t, electrumxtest.FromChain(g), "1.4.3")
		e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{noFullVerify: true})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := e.Sync(ctx)
		cancel()
		var le *spv.LieError
		if !errors.As(err, &le) || !strings.Contains(le.Reason, "auxpow parent") {
			t.Fatalf("seed %d: sync over fake work: %v", seed, err)
		}
		if tip := store.Tip().Height; tip != 0 {
			t.Fatalf("seed %d: tip %d after the sample failed, want the fake headers dropped", seed, tip)
		}
		if v := store.Verification(); v.Gap {
			t.Fatalf("seed %d: gap %+v left", seed, v)
		}
		if len(e.Demoted()) != 1 {
			t.Fatalf("seed %d: demoted %v", seed, e.Demoted())
		}
	}
}

// TestSampledLearnAfterCommit: a server that commits to a chain of fake
// work and, once it sees which headers are sampled, serves a chain that
// does have the work (another branch) cannot pass: the full headers are
// not the ones it committed to.
func TestSampledLearnAfterCommit(t *testing.T) {
	fake := map[int32]bool{}
	for h := int32(1); h <= sampledTip-2016; h++ {
		fake[h] = true
	}
	g := sampledChain(190, fake)
	honest := g.Fork(0, 191)
	honest.Chain(sampledTip)
	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	var swap sync.Once
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.header" && len(r.Params) == 1 {
			swap.Do(func() {
				for _, blk := range honest.Blocks[1:] {
					b.ReplaceHeader(blk.Height, blk.Raw)
				}
			})
		}
		return nil
	})
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{noFullVerify: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Sync(ctx)
	var le *spv.LieError
	if !errors.As(err, &le) || !strings.Contains(le.Reason, "not the header") {
		t.Fatalf("sync: %v, want a lie about a header it did not commit to", err)
	}
	if store.Tip().Height != 0 {
		t.Fatalf("tip %d: the uncommitted chain was kept", store.Tip().Height)
	}
}

// TestSampledGarbledFallsBack: against a server with ElectrumX 1.19+'s
// split bug, the first 80-byte chunk does not link together; the sync
// takes the same headers one per request instead, does not call the
// server a liar, and ends sampled at the right tip.
func TestSampledGarbledFallsBack(t *testing.T) {
	g := sampledChain(182, nil)
	b := electrumxtest.FromChain(g)
	srv := splitBugServer(t, b)
	logs := &lockedBuffer{}
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{noFullVerify: true, logs: logs})
	syncEngine(t, e)
	if tip := store.Tip(); tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d, want %d", tip.Height, sampledTip)
	}
	if st := e.State(); st.Verification != "sampled" || len(e.Demoted()) != 0 {
		t.Fatalf("state %+v, demoted %v", st, e.Demoted())
	}
	singles := 0
	for _, r := range srv.Log() {
		if r.Method == "blockchain.block.header" && len(r.Params) == 2 {
			singles++
		}
	}
	if singles < sampledTip-2016-1600 {
		t.Fatalf("%d single 80-byte headers fetched; the garbled range was not refetched", singles)
	}
	if !strings.Contains(logs.String(), "garbles 80-byte header chunks") {
		t.Fatalf("log does not say why: %s", logs.String())
	}
}

// singleHeaderRequests counts blockchain.block.header requests with a
// cp_height: the single-header 80-byte form.
func singleHeaderRequests(srv *electrumxtest.Server) int {
	n := 0
	for _, r := range srv.Log() {
		if r.Method == "blockchain.block.header" && len(r.Params) == 2 {
			n++
		}
	}
	return n
}

// TestSampledPrefersServerWithoutSplitBug: a server with the split bug
// gives way to one without it, which carries the 80-byte sync; the first
// is neither called a liar nor asked for single headers.
func TestSampledPrefersServerWithoutSplitBug(t *testing.T) {
	g := sampledChain(188, nil)
	garbler := splitBugServer(t, electrumxtest.FromChain(g))
	clean := startServer(t, electrumxtest.FromChain(g), "1.4.3")
	for round := range 3 { // either may answer first
		logs := &lockedBuffer{}
		e, store := sampledEngine(t, []electrumx.Server{garbler.Address(), clean.Address()}, sampledOpts{noFullVerify: true, logs: logs})
		syncEngine(t, e)
		if store.Tip().Hash != g.Tip().Hash || e.State().Verification != "sampled" || len(e.Demoted()) != 0 {
			t.Fatalf("round %d: tip %d, %+v, demoted %v\n%s", round, store.Tip().Height, e.State(), e.Demoted(), logs)
		}
	}
	if n := singleHeaderRequests(garbler); n != 0 {
		t.Fatalf("the server with the bug was asked for %d single headers", n)
	}
}

// TestSampledGarblerWithDeadServer: when the only other server cannot be
// reached, the one with the split bug carries the sync in the
// single-header form within the same sync: it gave way, it is not dropped.
func TestSampledGarblerWithDeadServer(t *testing.T) {
	g := sampledChain(189, nil)
	garbler := splitBugServer(t, electrumxtest.FromChain(g))
	dead, err := electrumx.ParseServer("tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	e, store := sampledEngine(t, []electrumx.Server{garbler.Address(), dead}, sampledOpts{noFullVerify: true, logs: logs})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Sync(ctx); err != nil {
		t.Fatalf("sync: %v\n%s", err, logs)
	}
	if store.Tip().Hash != g.Tip().Hash || e.State().Verification != "sampled" {
		t.Fatalf("tip %d, %+v", store.Tip().Height, e.State())
	}
	if singleHeaderRequests(garbler) == 0 {
		t.Fatal("no single headers asked for")
	}
}

// TestSampledRestart: a sync cut off after storing its 80-byte headers
// but before their sample leaves them "unverified"; after a restart the
// next sync samples them without fetching them again, and the background
// verification checks the rest in full, resuming from where a previous
// run stopped, until the chain is "fully verified" and stays so after
// another restart.
func TestSampledRestart(t *testing.T) {
	g := sampledChain(183, nil)
	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	path := filepath.Join(t.TempDir(), "headers.db")
	cut := true
	var mu sync.Mutex
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		mu.Lock()
		defer mu.Unlock()
		if cut && r.Method == "blockchain.block.header" && len(r.Params) == 1 {
			return &electrumxtest.Action{Close: true}
		}
		return nil
	})
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, noFullVerify: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Sync(ctx); err == nil {
		t.Fatal("sync passed without its sample")
	}
	// The sample comes before the newest period: the sync stopped at the
	// 80-byte part's end.
	if st := e.State(); st.Verification != "unverified" || st.Height != sampledTip-2016 {
		t.Fatalf("cut-off sync: %+v", st)
	}
	if _, err := e.NameShow(ctx, []byte("d/deep"), spv.LookupOptions{}); err == nil {
		t.Fatal("a lookup answered from unsampled headers")
	}
	e.Close()
	store.Close()
	mu.Lock()
	cut = false
	mu.Unlock()

	// The restart samples what is stored without fetching it again; its
	// background verification is cut off after three chunks.
	bareBefore, _ := bareRequests(srv)
	verifyChunks := 0
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		mu.Lock()
		defer mu.Unlock()
		var start int32
		if r.Method == "blockchain.block.headers" && len(r.Params) == 2 &&
			json.Unmarshal(r.Params[0], &start) == nil && start <= sampledTip-2016 {
			// A full chunk inside the 80-byte part: the background check.
			if verifyChunks++; verifyChunks > 3 {
				return &electrumxtest.Action{Close: true}
			}
		}
		return nil
	})
	e, store = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path})
	syncEngine(t, e)
	if bare, _ := bareRequests(srv); bare != bareBefore {
		t.Fatalf("%d 80-byte chunks fetched again after the restart", bare-bareBefore)
	}
	deadline := time.Now().Add(30 * time.Second)
	for store.Verification().Low == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no background progress: %+v", e.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the cut-off chunks fail
	e.Close()
	store.Close()
	partial := store.Verification()
	if st := partial; !st.Gap || !st.Sampled || st.Low <= 0 || st.Low >= st.End {
		t.Fatalf("after the cut-off verification: %+v", st)
	}

	// The next run resumes above what was verified and finishes.
	mu.Lock()
	srv.SetHook(nil)
	mu.Unlock()
	logBefore := len(srv.Log())
	e, store = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path})
	syncEngine(t, e)
	waitFullyVerified(t, e)
	if st := e.State(); st.VerifiedHeight != sampledTip {
		t.Fatalf("fully verified at %+v", st)
	}
	for _, r := range srv.Log()[logBefore:] {
		var start int32
		if r.Method == "blockchain.block.headers" && len(r.Params) == 2 &&
			json.Unmarshal(r.Params[0], &start) == nil && start <= partial.Low {
			t.Fatalf("headers from %d fetched again; %d were verified before the restart", start, partial.Low)
		}
	}
	e.Close()
	store.Close()
	_, store = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path})
	if v := store.Verification(); v.Mode() != "fully verified" {
		t.Fatalf("after a restart: %+v", v)
	}
	if err := store.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}

// TestSampledReorg: a sampled chain follows a competing branch with more
// work above its 80-byte part as a full one does, and stays sampled.
func TestSampledReorg(t *testing.T) {
	g := sampledChain(184, nil)
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{noFullVerify: true})
	syncEngine(t, e)
	before := store.Verification()
	branch := g.Fork(sampledTip-10, 185)
	branch.Slim = true
	blocks := branch.Chain(15)
	b.AddBlocks(blocks...)
	ctx := syncEngine(t, e)
	if tip := store.Tip(); tip.Hash != branch.Tip().Hash {
		t.Fatalf("tip %d %v, want the branch's %v", tip.Height, tip.Hash, branch.Tip().Hash)
	}
	if v := store.Verification(); v != before || v.Mode() != "sampled" {
		t.Fatalf("after the reorg: %+v, before %+v", v, before)
	}
	if _, err := e.NameShow(ctx, []byte("d/deep"), spv.LookupOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestSampledNameBlockLie: on a sampled chain, a server that backs a name
// proof resting on an unchecked block with a header lacking its work is a
// liar for that lookup. The chain is sampled while the server is honest;
// the engine is then restarted (so that it remembers no block as checked
// but the gap) and the server swaps block 1000's work for a fake.
func TestSampledNameBlockLie(t *testing.T) {
	honest := sampledChain(186, nil)
	fake := sampledChain(186, map[int32]bool{1000: true})
	if fake.Blocks[1000].Hash != honest.Blocks[1000].Hash || fake.Tip().Hash != honest.Tip().Hash {
		t.Fatal("the chains differ in more than block 1000's work")
	}
	b := electrumxtest.FromChain(honest)
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")
	path := filepath.Join(t.TempDir(), "headers.db")
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, noFullVerify: true})
	syncEngine(t, e)
	e.Close()
	store.Close()

	b.ReplaceHeader(1000, fake.Blocks[1000].Raw)
	e, store = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, noFullVerify: true})
	ctx := syncEngine(t, e)
	if st := e.State(); st.Verification != "sampled" {
		t.Fatalf("after restart: %+v", st)
	}
	if _, err := e.NameShow(ctx, []byte("d/deep"), spv.LookupOptions{}); err == nil {
		t.Fatal("answered from a block without its work")
	}
	if len(e.Demoted()) != 1 {
		t.Fatalf("demoted %v, want the server", e.Demoted())
	}
	// With its work back, the block is checked and the name answers.
	e.Close()
	store.Close()
	b.ReplaceHeader(1000, honest.Blocks[1000].Raw)
	e, _ = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, noFullVerify: true})
	ctx = syncEngine(t, e)
	if _, err := e.NameShow(ctx, []byte("d/deep"), spv.LookupOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestSampledPruning: a store that keeps few headers keeps every header of
// a sampled chain until the background verification has checked it, then
// prunes at the next commit as after a full sync.
func TestSampledPruning(t *testing.T) {
	g := sampledChain(187, nil)
	b := electrumxtest.FromChain(g)
	srv := startServer(t, b, "1.4.3")
	p := longExpiry()
	keep := int32(p.MedianTimeSpan) + p.RetargetInterval + 1
	path := filepath.Join(t.TempDir(), "headers.db")
	e, store := sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, keep: keep, noFullVerify: true})
	syncEngine(t, e)
	if st := e.State(); st.Verification != "sampled" || store.Base() != 0 {
		t.Fatalf("sampled with keep %d: %+v, base %d; want nothing pruned", keep, st, store.Base())
	}
	e.Close()
	store.Close()

	e, store = sampledEngine(t, []electrumx.Server{srv.Address()}, sampledOpts{path: path, keep: keep})
	syncEngine(t, e)
	waitFullyVerified(t, e)
	g.Slim = true
	b.AddBlocks(g.Chain(100)...)
	syncEngine(t, e)
	if tip, base := store.Tip().Height, store.Base(); base == 0 || tip-base+1 > keep+p.RetargetInterval {
		t.Fatalf("tip %d base %d: not pruned once verified", tip, base)
	}
	if err := store.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}

// splitBugServer serves b as ElectrumX 1.19+ does, split bug included.
func splitBugServer(t *testing.T, b *electrumxtest.Backend) *electrumxtest.Server {
	t.Helper()
	srv, err := electrumxtest.NewServer(b, electrumxtest.Options{MaxProtocol: "1.4.3", Pad: true, SplitBug: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// waitFullyVerified waits for e's background verification to finish.
func waitFullyVerified(t *testing.T, e *spv.Engine) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for e.State().Verification != "fully verified" {
		if time.Now().After(deadline) {
			t.Fatalf("background verification did not finish: %+v", e.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
