package headers

import "github.com/btcsuite/btcd/chaincfg/chainhash"

// MerkleBranchRoot folds a merkle branch over leaf at index, Bitcoin style
// (SHA256d of left||right). It does not check that index is exhausted;
// callers that need it check 1<<len(branch) > index themselves.
func MerkleBranchRoot(leaf chainhash.Hash, branch []chainhash.Hash, index uint32) chainhash.Hash {
	var buf [64]byte
	h := leaf
	for i := range branch {
		if index&1 != 0 {
			copy(buf[:32], branch[i][:])
			copy(buf[32:], h[:])
		} else {
			copy(buf[:32], h[:])
			copy(buf[32:], branch[i][:])
		}
		h = chainhash.DoubleHashH(buf[:])
		index >>= 1
	}
	return h
}

// MerkleRoot is the Bitcoin merkle root of leaves (SHA256d of pairs, the
// last node duplicated on odd levels): a block's transaction tree, or the
// cp_height tree over block hashes.
func MerkleRoot(leaves []chainhash.Hash) chainhash.Hash {
	if len(leaves) == 0 {
		return chainhash.Hash{}
	}
	level := append([]chainhash.Hash(nil), leaves...)
	for len(level) > 1 {
		level = merkleParents(level)
	}
	return level[0]
}

// MerkleBranch is the branch from leaves[index] to the root, in the form
// MerkleBranchRoot folds (and ElectrumX sends, byte-reversed).
func MerkleBranch(leaves []chainhash.Hash, index int) []chainhash.Hash {
	var branch []chainhash.Hash
	level := append([]chainhash.Hash(nil), leaves...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		branch = append(branch, level[index^1])
		level = merkleParents(level)
		index /= 2
	}
	return branch
}

// merkleParents hashes a level into the next one, in place.
func merkleParents(level []chainhash.Hash) []chainhash.Hash {
	if len(level)%2 == 1 {
		level = append(level, level[len(level)-1])
	}
	var buf [64]byte
	for i := 0; i < len(level)/2; i++ {
		copy(buf[:32], level[2*i][:])
		copy(buf[32:], level[2*i+1][:])
		level[i] = chainhash.DoubleHashH(buf[:])
	}
	return level[:len(level)/2]
}
