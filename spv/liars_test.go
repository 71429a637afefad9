package spv_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// plainTx is an ordinary (non-name) transaction.
func plainTx(tag uint32) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, 2)
	tx = append(tx, 1)
	prev := chainhash.DoubleHashH(binary.LittleEndian.AppendUint32([]byte("plain"), tag))
	tx = append(tx, prev[:]...)
	tx = append(tx, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1)
	tx = binary.LittleEndian.AppendUint64(tx, 5000)
	tx = append(tx, 25)
	tx = append(tx, chaingen.P2PKH([20]byte{9})...)
	return binary.LittleEndian.AppendUint32(tx, 0)
}

type liarCase struct {
	name  string
	proto string
	// lie edits the liar's backend (built from the honest chain).
	lie func(t *testing.T, nc *namedChain, b *electrumxtest.Backend)
	// alone: what a lookup of d/ascii gets from the liar alone.
	aloneErr   error // nil: expect aloneValue
	aloneValue string
}

func shOf(n string) string { return electrumxtest.ScriptHashOfName([]byte(n)) }

func history(nc *namedChain, name string) []electrumxtest.HistoryEntry {
	var out []electrumxtest.HistoryEntry
	for _, u := range nc.updates[name] {
		out = append(out, electrumxtest.HistoryEntry{TxHash: u.txid, Height: u.height})
	}
	return out
}

var liarCases = []liarCase{
	{
		name: "withheld newest update", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			h := history(nc, "d/ascii")
			b.SetHistory(shOf("d/ascii"), h[:len(h)-1])
		},
		aloneValue: `{"ip":"10.0.0.1"}`, // undetectable alone: a stale but genuine value
	},
	{
		name: "forged merkle proof", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			u := nc.updates["d/ascii"][1]
			b.AddTxProof(u.raw, u.height, []chainhash.Hash{{1}, {2}}, 1)
		},
		aloneErr: spv.ErrAllServersLied,
	},
	{
		name: "transaction does not match its id", proto: "1.4.2",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			u := nc.updates["d/ascii"][1]
			other := chaingen.NameTx(chaingen.OpUpdate, []byte("d/ascii"), []byte(`{"ip":"6.6.6.6"}`), [20]byte{6}, 0, 999)
			b.SetTx(u.txid, other)
		},
		aloneErr: spv.ErrAllServersLied,
	},
	{
		name: "another name's update", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			b.SetHistory(shOf("d/ascii"), history(nc, "d/fresh")[:1])
		},
		aloneErr: spv.ErrAllServersLied,
	},
	{
		name: "transaction without a name output", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			// Block 40 carries the plain transaction (see liarChain).
			b.SetHistory(shOf("d/ascii"), []electrumxtest.HistoryEntry{{TxHash: plainTxID(), Height: 40}})
		},
		aloneErr: spv.ErrAllServersLied,
	},
	{
		name: "transaction in a block not on our chain", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			f := nc.g.Fork(29, 77)
			forged := chaingen.NameTx(chaingen.OpUpdate, []byte("d/ascii"), []byte(`{"ip":"6.6.6.6"}`), [20]byte{6}, 0, 4242)
			blk := f.Next(chaingen.Spec{Txs: [][]byte{forged}})
			var ids []chainhash.Hash
			for _, raw := range blk.Txs {
				tx, _, _ := headers.ParseTx(raw)
				ids = append(ids, tx.TxID())
			}
			id := b.AddTxProof(forged, 30, headers.MerkleBranch(ids, 1), 1)
			h := history(nc, "d/ascii")
			b.SetHistory(shOf("d/ascii"), append(h[:1], electrumxtest.HistoryEntry{TxHash: id, Height: 30}))
		},
		aloneErr: spv.ErrAllServersLied,
	},
	{
		name: "fake never existed", proto: "1.4.3",
		lie: func(t *testing.T, nc *namedChain, b *electrumxtest.Backend) {
			b.SetHistory(shOf("d/ascii"), nil)
		},
		aloneErr: &spv.NameError{},
	},
}

var plainTxID = func() chainhash.Hash {
	tx, _, _ := headers.ParseTx(plainTx(1))
	return tx.TxID()
}

// liarChain is the named chain with a plain transaction in block 40.
func liarChain() *namedChain {
	nc := buildNamedChain(31)
	f := nc.g.Fork(39, 5)
	f.Next(chaingen.Spec{Txs: [][]byte{plainTx(1)}})
	f.Chain(10)
	nc.g = f
	return nc
}

// TestLiars: each lie is caught (the liar demoted) when an honest server
// answers too, and the newest verified value wins; alone, a liar gets the
// outcome it deserves: refused, or (for omissions, which no proof covers)
// an older or missing value.
func TestLiars(t *testing.T) {
	nc := liarChain()
	want := nc.updates["d/ascii"][1]
	for _, c := range liarCases {
		t.Run(c.name, func(t *testing.T) {
			honestB := nc.backend()
			liarB := nc.backend()
			c.lie(t, nc, liarB)
			honest := startServer(t, honestB, c.proto)
			liar := startServer(t, liarB, c.proto)

			// Together: the honest newest update wins.
			e, store := newEngine(t, &headers.RegTestParams, []electrumx.Server{honest.Address(), liar.Address()}, 3, 2)
			defer e.Close()
			ctx := syncEngine(t, e)
			r, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: "s"})
			if err != nil {
				t.Fatalf("with an honest server: %v", err)
			}
			checkResult(t, r, want, store.Tip().Height)
			caught := !errors.Is(c.aloneErr, spv.ErrAllServersLied)
			if got := slices.Contains(e.Demoted(), liar.Address().String()); got == caught {
				t.Fatalf("liar demoted = %v", got)
			}

			// Alone.
			e2, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{liar.Address()}, 3, 1)
			defer e2.Close()
			ctx2 := syncEngine(t, e2)
			r, err = e2.NameShow(ctx2, []byte("d/ascii"), spv.LookupOptions{StreamID: "s"})
			switch want := c.aloneErr.(type) {
			case nil:
				if err != nil || string(r.Value) != c.aloneValue {
					t.Fatalf("alone: %v %+v", err, r)
				}
			case *spv.NameError:
				var ne *spv.NameError
				if !errors.As(err, &ne) {
					t.Fatalf("alone: want a name error, got %v", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("alone: want %v, got %v", want, err)
				}
				t.Logf("alone: %v", err)
			}
		})
	}
}

// TestReorgedAwayUpdate: an update whose block a reorg removed is refused
// from a server still on the old branch; the update on the new branch is
// returned.
func TestReorgedAwayUpdate(t *testing.T) {
	nc := buildNamedChain(41) // d/fresh v2 at 49
	old := nc.backend()
	honestB := nc.backend()
	stale := startServer(t, old, "1.4.3")
	honest := startServer(t, honestB, "1.4.3")
	e, store := newEngine(t, &headers.RegTestParams, []electrumx.Server{honest.Address(), stale.Address()}, 3, 2)
	defer e.Close()
	ctx := syncEngine(t, e)

	// The honest server reorganizes from 45 onto a longer branch without
	// the v2 update.
	b := nc.g.Fork(45, 99)
	b.Chain(10)
	honestB.AddBlocks(b.Blocks[46:]...)
	honestB.IndexNames()
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tip := store.Tip(); tip.Hash != b.Tip().Hash {
		t.Fatalf("did not follow the reorg: tip %d", tip.Height)
	}
	r, err := e.NameShow(ctx, []byte("d/fresh"), spv.LookupOptions{StreamID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, nc.updates["d/fresh"][0], store.Tip().Height)
	if !slices.Contains(e.Demoted(), stale.Address().String()) {
		t.Fatal("server serving a reorged-away update not demoted")
	}
}
