package spv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// nameAt is one name operation a test chain carries.
type nameAt struct {
	height int32
	name   string
	value  string
	op     byte
	// version, if not zero, replaces the Namecoin transaction version.
	version uint32
}

// chainWithNames generates a regtest chain of tip blocks carrying ops and
// returns it with the txid of each op, in order.
func chainWithNames(p *headers.Params, seed uint64, tip int32, ops []nameAt) (*chaingen.Generator, []chainhash.Hash) {
	g := chaingen.New(p, seed)
	g.Slim = true
	ids := make([]chainhash.Hash, len(ops))
	for h := int32(1); h <= tip; h++ {
		var txs [][]byte
		for i, o := range ops {
			if o.height != h {
				continue
			}
			op := o.op
			if op == 0 {
				op = chaingen.OpUpdate
			}
			tx := chaingen.NameTx(op, []byte(o.name), []byte(o.value), [20]byte{byte(i + 1)}, 0, uint64(1000+i))
			if o.version != 0 {
				binary.LittleEndian.PutUint32(tx, o.version)
			}
			parsed, _, err := headers.ParseTx(tx)
			if err != nil {
				panic(err)
			}
			ids[i] = parsed.TxID()
			txs = append(txs, tx)
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	return g, ids
}

func serveNames(t *testing.T, g *chaingen.Generator, proto string) electrumx.Server {
	t.Helper()
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	return startServer(t, b, proto).Address()
}

// TestFreshUpdatesUnderPolicy: with the default 12 confirmations, a name
// whose deep update has expired but was renewed in the last blocks, and a
// name registered in the last blocks, are shown with their newest
// verified update, as Core shows them; a name with a live deep update
// keeps the policy's answer. Both lookup paths (1.4.3 and 1.4.2).
func TestFreshUpdatesUnderPolicy(t *testing.T) {
	p := &headers.RegTestParams // names expire after 30 blocks
	const tip = 45              // 12 confirmations: updates up to 34 are deep
	g, _ := chainWithNames(p, 101, tip, []nameAt{
		{height: 10, name: "d/renewed", value: "old", op: chaingen.OpFirstUpdate}, // expired at 40
		{height: 42, name: "d/renewed", value: "renewed"},                         // 4 confirmations
		{height: 44, name: "d/newborn", value: "new", op: chaingen.OpFirstUpdate},
		{height: 20, name: "d/policy", value: "deep"}, // live until 50
		{height: 43, name: "d/policy", value: "fresh"},
		{height: 5, name: "d/gone", value: "x", op: chaingen.OpFirstUpdate},
	})
	for _, proto := range []string{"1.4.3", "1.4.2"} {
		t.Run(proto, func(t *testing.T) {
			e, _ := newEngine(t, p, []electrumx.Server{serveNames(t, g, proto)}, 0, 1)
			ctx := syncEngine(t, e)
			for name, want := range map[string]string{"d/renewed": "renewed", "d/newborn": "new", "d/policy": "deep"} {
				r, err := e.NameShow(ctx, []byte(name), spv.LookupOptions{})
				if err != nil || string(r.Value) != want || r.Expired {
					t.Errorf("%s: %+v %v, want %q", name, r, err, want)
				}
			}
			var ne *spv.NameError
			if _, err := e.NameShow(ctx, []byte("d/gone"), spv.LookupOptions{}); !errors.As(err, &ne) || ne.Kind != spv.NameExpired {
				t.Errorf("d/gone: %v, want expired", err)
			}
		})
	}
}

// TestExpiredBelowPrunedStore: a name last updated below the pruned
// store (and above the checkpoint, here genesis) cannot be proven, but
// needs no proof to be expired: Core's -4 "name expired", no server
// called a liar. With allowExpired it says why it cannot be shown.
func TestExpiredBelowPrunedStore(t *testing.T) {
	p := &headers.RegTestParams
	g, _ := chainWithNames(p, 102, 4200, []nameAt{{height: 100, name: "d/old", value: "v", op: chaingen.OpFirstUpdate}})
	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, cp.Anchor(),
		headers.StoreOptions{NoSync: true, KeepHeaders: 2028})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pool := electrumx.NewPool(electrumx.Config{})
	t.Cleanup(pool.Close)
	for _, proto := range []string{"1.4.3", "1.4.2"} {
		e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
			Servers: []electrumx.Server{serveNames(t, g, proto)}, Router: tor.NewRouter(tor.Direct), Pool: pool, QueryServers: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx := syncEngine(t, e)
		if store.Base() <= 100 {
			t.Fatalf("test set-up: store not pruned past 100 (base %d)", store.Base())
		}
		var ne *spv.NameError
		if _, err := e.NameShow(ctx, []byte("d/old"), spv.LookupOptions{}); !errors.As(err, &ne) || ne.Kind != spv.NameExpired {
			t.Errorf("%s: %v, want name expired", proto, err)
		}
		if _, err := e.NameShow(ctx, []byte("d/old"), spv.LookupOptions{AllowExpired: true}); !errors.Is(err, spv.ErrUnprovable) {
			t.Errorf("%s allowExpired: %v, want ErrUnprovable", proto, err)
		}
		if d := e.Demoted(); len(d) != 0 {
			t.Errorf("%s: honest server demoted: %v", proto, d)
		}
		e.Close()
	}
}

// TestHistoricBugsIgnored: updates in transactions Core ignores (its
// historic bugs: name outputs in a non-Namecoin transaction, libcoin's
// name stealing) are passed over as Core passes them over: the update
// before them is the answer and the server is not called a liar.
func TestHistoricBugsIgnored(t *testing.T) {
	p := headers.RegTestParams
	ops := []nameAt{
		{height: 10, name: "d/a", value: "genuine", op: chaingen.OpFirstUpdate},
		{height: 20, name: "d/a", value: "not-namecoin-tx", op: chaingen.OpFirstUpdate, version: 1},
		{height: 12, name: "d/b", value: "genuine", op: chaingen.OpFirstUpdate},
		{height: 21, name: "d/b", value: "stolen"},
	}
	g, ids := chainWithNames(&p, 103, 35, ops)
	p.IgnoredNameTxs = map[chainhash.Hash]int32{ids[1]: 20, ids[3]: 21}
	for _, proto := range []string{"1.4.3", "1.4.2"} {
		e, _ := newEngine(t, &p, []electrumx.Server{serveNames(t, g, proto)}, 1, 1)
		ctx := syncEngine(t, e)
		for _, name := range []string{"d/a", "d/b"} {
			r, err := e.NameShow(ctx, []byte(name), spv.LookupOptions{})
			if err != nil || string(r.Value) != "genuine" {
				t.Errorf("%s %s: %+v %v, want the update before the ignored one", proto, name, r, err)
			}
		}
		if d := e.Demoted(); len(d) != 0 {
			t.Errorf("%s: demoted %v", proto, d)
		}
	}
	// The same transaction at another height is not the historic one.
	if p.IgnoresNameTx(ids[1], 21) || !p.IgnoresNameTx(ids[1], 20) {
		t.Error("IgnoresNameTx does not key on the height")
	}
	if fmt.Sprint(headers.MainNetParams.IgnoresNameTx(chainhash.Hash{}, 98423)) != "false" {
		t.Error("an unknown transaction is ignored")
	}
}

// TestBoundedValueProof: a name renewed every 5 blocks, 300 times. Real
// ElectrumX (and the fake, which answers as it does) returns all 300
// updates without cp_height, since no gap between two is longer than the
// expiration depth; ncspv asks with cp_height at the policy's deepest
// height and gets the updates above it and one below. A server that
// refuses the height is asked without it.
func TestBoundedValueProof(t *testing.T) {
	p := &headers.RegTestParams
	var ops []nameAt
	for i := range 300 {
		op := byte(chaingen.OpUpdate)
		if i == 0 {
			op = chaingen.OpFirstUpdate
		}
		ops = append(ops, nameAt{height: int32(10 + 5*i), name: "d/renewed", value: fmt.Sprintf("v%d", i), op: op})
	}
	g, _ := chainWithNames(p, 105, 1510, ops) // last update at 1505
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")

	whole := countEntries(t, srv, shOf("d/renewed"), 0)
	if whole != 300 {
		t.Fatalf("without cp_height the fake returned %d entries, real ElectrumX 300", whole)
	}
	for _, refuse := range []bool{false, true} {
		if refuse {
			srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
				if r.Method == "blockchain.name.get_value_proof" && len(r.Params) > 1 {
					return &electrumxtest.Action{Error: &electrumx.RPCError{Code: 1, Message: "cp_height out of range"}}
				}
				return nil
			})
		}
		e, _ := newEngine(t, p, []electrumx.Server{srv.Address()}, 12, 1)
		ctx := syncEngine(t, e)
		before := len(srv.Log())
		r, err := e.NameShow(ctx, []byte("d/renewed"), spv.LookupOptions{})
		if err != nil || string(r.Value) != "v297" { // 1495: the newest with 12 confirmations at 1510
			t.Fatalf("refuse %v: %+v %v", refuse, r, err)
		}
		var asked []string
		for _, rq := range srv.Log()[before:] {
			if rq.Method == "blockchain.name.get_value_proof" {
				asked = append(asked, fmt.Sprint(len(rq.Params)))
			}
		}
		want := "[2]"
		if refuse {
			want = "[2 1]"
		}
		if fmt.Sprint(asked) != want {
			t.Errorf("refuse %v: get_value_proof calls with %v parameters, want %s", refuse, asked, want)
		}
	}
	if n := countEntries(t, srv, shOf("d/renewed"), 1499); n != 3 {
		t.Fatalf("cp_height 1499: %d entries, want 1505, 1500 and 1495", n)
	}
}

// countEntries asks srv's get_value_proof directly.
func countEntries(t *testing.T, srv *electrumxtest.Server, sh string, cp int32) int {
	t.Helper()
	srv.SetHook(nil)
	c, err := electrumx.Dial(context.Background(), srv.Address(), electrumx.Config{Dial: electrumx.DialFunc(tor.Direct.Dialer(tor.Fresh()))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	entries, err := c.NameGetValueProof(context.Background(), sh, cp)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
