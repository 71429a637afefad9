package headers

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func TestMerkleBranchFoldsToRoot(t *testing.T) {
	for n := 1; n <= 17; n++ {
		ids := make([]chainhash.Hash, n)
		for i := range ids {
			ids[i] = chainhash.DoubleHashH([]byte{byte(i), byte(n)})
		}
		root := MerkleRoot(ids)
		for i := range ids {
			got := MerkleBranchRoot(ids[i], MerkleBranch(ids, i), uint32(i))
			if got != root {
				t.Fatalf("n=%d i=%d: branch folds to %v, root %v", n, i, got, root)
			}
		}
	}
}

func TestMerkleRootOfOneIsTheLeaf(t *testing.T) {
	leaf := chainhash.DoubleHashH([]byte("x"))
	if MerkleRoot([]chainhash.Hash{leaf}) != leaf || len(MerkleBranch([]chainhash.Hash{leaf}, 0)) != 0 {
		t.Fatal("a one-leaf tree is its leaf")
	}
}
