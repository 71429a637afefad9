package spv_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// hostilePair starts an honest server and one that misbehaves through
// hook, both serving the named test chain, and an engine that knows the
// misbehaving one; every sync asks both.
func hostilePair(t *testing.T, hook electrumxtest.Hook, logs *lockedBuffer) (*spv.Engine, *headers.Store, *electrumxtest.Server, *namedChain) {
	t.Helper()
	nc := buildNamedChain(31)
	honest := startServer(t, nc.backend(), "1.4.3")
	bad := startServer(t, nc.backend(), "1.4.3")
	bad.SetHook(hook)
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	pool := electrumx.NewPool(electrumx.Config{HandshakeTimeout: 300 * time.Millisecond})
	t.Cleanup(pool.Close)
	e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams, Pool: pool,
		Servers: []electrumx.Server{bad.Address(), honest.Address()}, Confirmations: 3, QueryServers: 2,
		RequestTimeout: time.Second, Logger: log})
	return e, store, bad, nc
}

// TestSilentServer: a server that accepts the connection and never says
// a word cannot hold the first sync: the handshake times out, the log
// names the server, the honest one syncs and lookups answer.
func TestSilentServer(t *testing.T) {
	var logs lockedBuffer
	e, store, bad, nc := hostilePair(t, func(electrumxtest.Request) *electrumxtest.Action {
		return &electrumxtest.Action{NoReply: true}
	}, &logs)
	for range 3 { // whatever order the servers come in
		ctx := syncEngine(t, e)
		if store.Tip().Hash != nc.g.Tip().Hash {
			t.Fatalf("tip %d", store.Tip().Height)
		}
		r, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{})
		if err != nil || string(r.Value) != `{"ip":"10.0.0.2","tor":"example.onion"}` {
			t.Fatalf("lookup with a silent server configured: %+v %v", r, err)
		}
	}
	if !strings.Contains(logs.String(), "stalled") || !strings.Contains(logs.String(), bad.Address().String()) {
		t.Fatalf("the log does not say which server stalled:\n%s", logs.String())
	}
}

// TestSilentAfterHandshake: a server that completes its handshake and
// then never answers holds the first sync no longer than the tip
// subscription's timeout, not a chunk request's (an hour here, so that a
// sync that waited for it would end at the test's deadline instead): the
// honest server's chain is synced, and the silent one is asked last from
// then on.
func TestSilentAfterHandshake(t *testing.T) {
	nc := buildNamedChain(33)
	honest := startServer(t, nc.backend(), "1.4.3")
	silent := startServer(t, nc.backend(), "1.4.3")
	silent.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "server.version" {
			return nil
		}
		return &electrumxtest.Action{NoReply: true}
	})
	e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{silent.Address(), honest.Address()}, Confirmations: 3, QueryServers: 2,
		RequestTimeout: time.Hour, TipTimeout: 200 * time.Millisecond})
	syncEngine(t, e)
	if store.Tip().Hash != nc.g.Tip().Hash {
		t.Fatalf("tip %d", store.Tip().Height)
	}
	if d := e.Demoted(); len(d) != 1 || d[0] != silent.Address().String() {
		t.Fatalf("demoted %v, want the silent server", d)
	}
	if n := silent.Requests("blockchain.headers.subscribe"); n != 1 {
		t.Fatalf("%d tip subscriptions to the silent server", n)
	}
}

// TestSilentServerHandshake: a stalled handshake is ErrStalled, not a
// wait without end.
func TestSilentServerHandshake(t *testing.T) {
	srv := startServer(t, buildNamedChain(32).backend(), "1.4.3")
	srv.SetHook(func(electrumxtest.Request) *electrumxtest.Action { return &electrumxtest.Action{NoReply: true} })
	_, err := electrumx.Dial(context.Background(), srv.Address(), electrumx.Config{
		Dial: electrumx.DialFunc(tor.Direct.Dialer(tor.Fresh())), HandshakeTimeout: 200 * time.Millisecond})
	if !errors.Is(err, electrumx.ErrStalled) {
		t.Fatalf("silent server.version: %v, want ErrStalled", err)
	}
}

// TestFakeTip: a server that announces a tip far above its chain and
// answers past its real tip with empty chunks is a liar after one empty
// reply: a bounded number of requests, no busy loop, the honest chain is
// the tip and getblockchaininfo's headers count only what was proven.
func TestFakeTip(t *testing.T) {
	var fake *electrumxtest.Server
	e, store, bad, nc := hostilePair(t, func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method != "blockchain.headers.subscribe" {
			return nil
		}
		tip := fake.Backend.Tip()
		raw, _ := fake.Backend.Header(tip)
		return &electrumxtest.Action{Result: map[string]any{"height": tip + 100000, "hex": hex.EncodeToString(raw)}}
	}, nil)
	fake = bad
	for range 5 {
		syncEngine(t, e)
	}
	if store.Tip().Hash != nc.g.Tip().Hash {
		t.Fatalf("tip %d", store.Tip().Height)
	}
	if n := bad.Requests("blockchain.block.headers"); n > 10 {
		t.Fatalf("%d chunk requests to the server with a fake tip", n)
	}
	if st := e.State(); st.Height != nc.g.Tip().Height {
		t.Fatalf("state %+v", st)
	}
}

// TestHugeZeroReply: 10 MB of zeros for a chunk (65,536 bare headers)
// is refused: over the sync connection's reply cap (or, under it, at the
// first header past those asked for); the honest server's chain is the
// tip.
func TestHugeZeroReply(t *testing.T) {
	zeros := strings.Repeat("0", 10<<20)
	e, store, bad, nc := hostilePair(t, func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method != "blockchain.block.headers" {
			return nil
		}
		return &electrumxtest.Action{Result: map[string]any{"count": 126, "max": 2016, "hex": zeros}}
	}, nil)
	for range 3 {
		syncEngine(t, e)
	}
	if store.Tip().Hash != nc.g.Tip().Hash {
		t.Fatalf("tip %d", store.Tip().Height)
	}
	// Alone, the server is caught at its first chunk.
	alone, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{bad.Address()}, QueryServers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Over the sync's reply cap, or, under it, more headers than asked.
	var le *spv.LieError
	if err := alone.Sync(ctx); !(errors.As(err, &le) || errors.Is(err, electrumx.ErrReplyTooLarge)) || len(alone.Demoted()) != 1 {
		t.Fatalf("sync from the server alone: %v, demoted %v", err, alone.Demoted())
	}
}

// TestBadHeaderKeepsValidPrefix: a chunk whose 30th header is forged
// still gives the 29 valid headers before it.
func TestBadHeaderKeepsValidPrefix(t *testing.T) {
	nc := buildNamedChain(33)
	b := nc.backend()
	forged := *nc.g.Blocks[30].Header
	forged.Header.Nonce++
	b.ReplaceHeader(30, forged.Serialize())
	srv := startServer(t, b, "1.4.3")
	e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{srv.Address()}, QueryServers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var le *spv.LieError
	if err := e.Sync(ctx); !errors.As(err, &le) {
		t.Fatalf("sync: %v, want a lie", err)
	}
	if tip := store.Tip(); tip.Height != 29 || tip.Hash != nc.g.Blocks[29].Hash {
		t.Fatalf("tip %d, want the 29 headers before the forged one", tip.Height)
	}
}

// TestAbsurdMerklePosition: a merkle position of 2^70 is the server's
// lie (it is demoted), not a failure of the network.
func TestAbsurdMerklePosition(t *testing.T) {
	nc := buildNamedChain(34)
	srv := startServer(t, nc.backend(), "1.4.3")
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method != "blockchain.name.get_value_proof" {
			return nil
		}
		return &electrumxtest.Action{Result: json.RawMessage(`{"` + shOf("d/ascii") +
			`":[{"height":30,"tx":"00","tx_merkle":{"block_height":30,"merkle":[],"pos":1180591620717411303424}}]}`)}
	})
	e, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
		Servers: []electrumx.Server{srv.Address()}, QueryServers: 1, Confirmations: 3})
	ctx := syncEngine(t, e)
	if _, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{}); !errors.Is(err, spv.ErrAllServersLied) ||
		!strings.Contains(err.Error(), "1180591620717411303424") {
		t.Fatalf("pos 2^70: %v, want every server lied", err)
	}
	if len(e.Demoted()) != 1 {
		t.Fatal("not demoted")
	}
}

// TestServersConnectInParallel: servers are connected to a few at a time
// and synced with in the order they answer, so two that never finish
// their handshake (30 s each here) do not hold up the third, wherever it
// comes in the list. One after another, this sync would take a minute.
func TestServersConnectInParallel(t *testing.T) {
	nc := buildNamedChain(35)
	honest := startServer(t, nc.backend(), "1.4.3")
	var silent []electrumx.Server
	for range 2 {
		s := startServer(t, nc.backend(), "1.4.3")
		s.SetHook(func(electrumxtest.Request) *electrumxtest.Action { return &electrumxtest.Action{NoReply: true} })
		silent = append(silent, s.Address())
	}
	pool := electrumx.NewPool(electrumx.Config{HandshakeTimeout: 30 * time.Second})
	t.Cleanup(pool.Close)
	e, store := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams, Pool: pool,
		Servers: append(silent, honest.Address()), QueryServers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Tip().Hash != nc.g.Tip().Hash {
		t.Fatalf("tip %d", store.Tip().Height)
	}
}
