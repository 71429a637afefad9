package spv_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// TestLookupBelowCheckpoint: the store starts at a checkpoint (height 150)
// and a name last updated below it (140) is proven with the header the
// server sends under cp_height, checked against the checkpoint's root; a
// server that bends that proof is caught.
func TestLookupBelowCheckpoint(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 71)
	for h := 1; h <= 160; h++ {
		var txs [][]byte
		if h == 140 {
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte("d/old"), []byte("v"), [20]byte{7}, 0, 140))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	var hashes []chainhash.Hash
	for _, b := range g.Blocks[:151] {
		hashes = append(hashes, b.Hash)
	}
	anchor := g.Blocks[150]
	cp := checkpoints.Checkpoint{
		Height: 150, MerkleRoot: headers.MerkleRoot(hashes),
		PeriodEnd: 150, PeriodEndHash: anchor.Hash, PeriodEndTime: anchor.Info.Time,
		NextBits: anchor.Info.Bits, ChainWork: headers.CalcWork(p.PowLimitBits),
	}
	for _, bend := range []bool{false, true} {
		b := (&namedChain{g: g}).backend()
		srv := startServer(t, b, "1.4.3")
		if bend {
			// Serve another header under the checkpoint for height 140.
			other := g.Fork(139, 5).Next(chaingen.Spec{})
			b.ReplaceHeader(140, other.Raw)
		}
		store, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, cp.Anchor(), headers.StoreOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		pool := electrumx.NewPool(electrumx.Config{})
		e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
			Servers: []electrumx.Server{srv.Address()}, Router: tor.NewRouter(tor.Direct), Pool: pool,
			Confirmations: 1, QueryServers: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx := syncEngine(t, e)
		if base, tip := store.Base(), store.Tip().Height; base != 150 || tip != 160 {
			t.Fatalf("store %d..%d", base, tip)
		}
		r, err := e.NameShow(ctx, []byte("d/old"), spv.LookupOptions{})
		switch {
		case !bend && (err != nil || r.Height != 140 || r.ExpiresIn != 10):
			t.Fatalf("below the checkpoint: %+v %v", r, err)
		case bend && !errors.Is(err, spv.ErrAllServersLied):
			t.Fatalf("bent checkpoint proof: %v", err)
		}
		e.Close()
		pool.Close()
		store.Close()
	}
}
