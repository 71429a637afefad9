package spv_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// TestLookupBelowCheckpoint: the store starts at a checkpoint (height 150)
// and a name last updated below it and its stored ancestors (139) is proven with the header the
// server sends under cp_height, checked against the checkpoint's root; a
// server that bends that proof is caught.
func TestLookupBelowCheckpoint(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 71)
	for h := 1; h <= 160; h++ {
		var txs [][]byte
		if h == 139 {
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte("d/old"), []byte("v"), [20]byte{7}, 0, 139))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	cp := checkpointAt(g, 150, 150)
	for _, bend := range []bool{false, true} {
		b := (&namedChain{g: g}).backend()
		srv := startServer(t, b, "1.4.3")
		e, store := newEngineConfig(t, spv.Config{Params: p, Checkpoint: cp,
			Servers: []electrumx.Server{srv.Address()}, Confirmations: 1, QueryServers: 1})
		ctx := syncEngine(t, e)
		// The anchor's ancestors (the median time past's window) are
		// stored; block 140 is below them.
		if base, tip := store.Base(), store.Tip().Height; base != 140 || tip != 160 {
			t.Fatalf("store %d..%d", base, tip)
		}
		if bend {
			// Serve another header under the checkpoint for height 139.
			other := g.Fork(138, 5).Next(chaingen.Spec{})
			b.ReplaceHeader(139, other.Raw)
		}
		r, err := e.NameShow(ctx, []byte("d/old"), spv.LookupOptions{})
		switch {
		case !bend && (err != nil || r.Height != 139 || r.ExpiresIn != 9):
			t.Fatalf("below the checkpoint: %+v %v", r, err)
		case bend && !errors.Is(err, spv.ErrAllServersLied):
			t.Fatalf("bent checkpoint proof: %v", err)
		}
	}
}

// checkpointAt makes the checkpoint a store anchored at block anchor of g
// starts from, with cp_height cpHeight.
func checkpointAt(g *chaingen.Generator, anchor, cpHeight int32) checkpoints.Checkpoint {
	var hashes []chainhash.Hash
	for _, b := range g.Blocks[:cpHeight+1] {
		hashes = append(hashes, b.Hash)
	}
	a := g.Blocks[anchor]
	return checkpoints.Checkpoint{
		Height: cpHeight, MerkleRoot: headers.MerkleRoot(hashes),
		PeriodEnd: anchor, PeriodEndHash: a.Hash, PeriodEndTime: a.Info.Time,
		NextBits:  a.Info.Bits,
		ChainWork: new(big.Int).Mul(headers.CalcWork(g.Params.PowLimitBits), big.NewInt(int64(anchor)+1)),
	}
}

// TestSyncAfterAnchorMedianTime: Core checks a block's time against the
// median of the 11 blocks before it. Right after a checkpoint anchor those
// blocks are below the store: ncspv fetches them with cp_height proofs, so
// a block dated one second before the anchor (valid in Core, common on
// mainnet) syncs. A server that bends one of those proofs is a liar.
func TestSyncAfterAnchorMedianTime(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 72)
	g.Chain(150)
	g.Next(chaingen.Spec{Time: g.Tip().Info.Time - 1})
	g.Chain(20)
	cp := checkpointAt(g, 150, 160)
	for _, bend := range []bool{false, true} {
		b := (&namedChain{g: g}).backend()
		if bend {
			other := g.Fork(144, 9).Next(chaingen.Spec{})
			b.ReplaceHeader(145, other.Raw)
		}
		srv := startServer(t, b, "1.4.3")
		e, store := newEngineConfig(t, spv.Config{Params: p, Checkpoint: cp,
			Servers: []electrumx.Server{srv.Address()}, QueryServers: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := e.Sync(ctx)
		cancel()
		switch {
		case !bend && err != nil:
			t.Fatalf("sync past a block dated before the anchor: %v", err)
		case !bend && store.Tip().Hash != g.Tip().Hash:
			t.Fatalf("tip %d, want %d", store.Tip().Height, g.Tip().Height)
		case !bend:
			if err := store.CheckIntegrity(); err != nil {
				t.Fatal(err)
			}
		case bend && (err == nil || len(e.Demoted()) != 1 || store.Tip().Height != 150):
			t.Fatalf("bent proof below the anchor: %v, demoted %v, tip %d", err, e.Demoted(), store.Tip().Height)
		}
	}
}
