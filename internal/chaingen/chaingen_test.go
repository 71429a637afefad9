package chaingen

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

func TestDeterministic(t *testing.T) {
	a, b := New(&headers.RegTestParams, 42), New(&headers.RegTestParams, 42)
	a.Chain(50)
	b.Chain(50)
	if !bytes.Equal(a.Joined(1, 50), b.Joined(1, 50)) {
		t.Fatal("same seed, different chains")
	}
	c := New(&headers.RegTestParams, 43)
	c.Chain(50)
	if c.Tip().Hash == a.Tip().Hash {
		t.Fatal("different seeds, same chain")
	}
}

func TestMerkleBranchFoldsToRoot(t *testing.T) {
	for n := 1; n <= 17; n++ {
		ids := make([]chainhash.Hash, n)
		for i := range ids {
			ids[i] = chainhash.DoubleHashH([]byte{byte(i), byte(n)})
		}
		root := MerkleRoot(ids)
		for i := range ids {
			got := headers.MerkleBranchRoot(ids[i], MerkleBranch(ids, i), uint32(i))
			if got != root {
				t.Fatalf("n=%d i=%d: branch folds to %v, root %v", n, i, got, root)
			}
		}
	}
}

func TestForkSharesPrefix(t *testing.T) {
	g := New(&headers.RegTestParams, 1)
	g.Chain(20)
	f := g.Fork(10, 5)
	f.Chain(3)
	if f.Blocks[10].Hash != g.Blocks[10].Hash || f.Blocks[11].Hash == g.Blocks[11].Hash {
		t.Fatal("fork does not branch at 10")
	}
	if len(g.Blocks) != 21 {
		t.Fatal("forking changed the original")
	}
}
