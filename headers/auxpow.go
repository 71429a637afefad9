package headers

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

const (
	// MaxChainBranchLength is the longest chain merkle branch Core allows.
	MaxChainBranchLength = 30

	// maxRootOffset is how deep into the scriptSig the chain root may
	// start when the merged-mining magic is absent (legacy form).
	maxRootOffset = 20
)

// MergedMiningMagic precedes the chain merkle root in a parent coinbase.
var MergedMiningMagic = []byte{0xfa, 0xbe, 'm', 'm'}

// ExpectedChainIndex is Core's getExpectedIndex: the slot in the chain
// merkle tree that chainID must use for this nonce, so one parent block
// cannot commit to two versions of the same chain.
func ExpectedChainIndex(nonce uint32, chainID int32, branchLen int) uint32 {
	// 64-bit arithmetic modulo 2^branchLen, exactly as Core computes it.
	mod := uint64(1) << uint(branchLen)
	rand := uint64(nonce)
	rand = (rand*1103515245 + 12345) % mod
	rand += uint64(int64(chainID))
	rand = (rand*1103515245 + 12345) % mod
	return uint32(rand)
}

// CheckAuxPoW is Core's CAuxPow::check: aux proves that the parent block
// committed to auxHash (this block's hash) for chainID. It does not check
// the parent's proof of work.
func CheckAuxPoW(aux *AuxPoW, auxHash chainhash.Hash, chainID int32, p *Params) error {
	if p.StrictChainID && aux.ParentHeader.ChainID() == chainID {
		return ruleError(ErrAuxParentChainID,
			"auxpow parent block has our chain ID %d", chainID)
	}
	if len(aux.ChainBranch) > MaxChainBranchLength {
		return ruleError(ErrAuxChainBranchTooLong,
			"auxpow chain merkle branch has %d hashes, at most %d allowed",
			len(aux.ChainBranch), MaxChainBranchLength)
	}

	// The coinbase holds the root in display (byte-reversed) order.
	var root chainhash.Hash
	if aux.ChainIndex != -1 { // Core's CheckMerkleBranch yields zero for -1
		root = MerkleBranchRoot(auxHash, aux.ChainBranch, uint32(aux.ChainIndex))
	}
	slices.Reverse(root[:])

	// Core fixes the coinbase index at 0 and ignores the stored nIndex.
	cbRoot := MerkleBranchRoot(aux.CoinbaseTx.TxID(), aux.CoinbaseBranch, 0)
	if cbRoot != aux.ParentHeader.MerkleRoot {
		return ruleError(ErrAuxCoinbaseNotInParent,
			"auxpow coinbase branch leads to %v, parent merkle root is %v",
			cbRoot, aux.ParentHeader.MerkleRoot)
	}
	if len(aux.CoinbaseTx.TxIn) == 0 {
		return ruleError(ErrAuxCoinbaseNoInputs, "auxpow coinbase has no inputs")
	}
	script := aux.CoinbaseTx.TxIn[0].SignatureScript

	head := bytes.Index(script, MergedMiningMagic)
	pos := bytes.Index(script, root[:])
	if pos < 0 {
		return ruleError(ErrAuxMissingChainRoot,
			"auxpow chain merkle root %x is not in the parent coinbase", root)
	}
	if head >= 0 {
		if bytes.Contains(script[head+1:], MergedMiningMagic) {
			return ruleError(ErrAuxMultipleMagic,
				"parent coinbase has more than one merged-mining header")
		}
		if head+len(MergedMiningMagic) != pos {
			return ruleError(ErrAuxMagicNotBeforeRoot,
				"merged-mining header at byte %d is not just before the chain root at byte %d",
				head, pos)
		}
	} else if pos > maxRootOffset {
		return ruleError(ErrAuxRootTooLate,
			"chain merkle root starts at byte %d of the coinbase, must be within %d",
			pos, maxRootOffset)
	}

	rest := script[pos+len(root):]
	if len(rest) < 8 {
		return ruleError(ErrAuxMissingSizeNonce,
			"parent coinbase lacks the chain merkle tree size and nonce")
	}
	size := binary.LittleEndian.Uint32(rest[0:4])
	nonce := binary.LittleEndian.Uint32(rest[4:8])
	if want := uint32(1) << uint(len(aux.ChainBranch)); size != want {
		return ruleError(ErrAuxWrongMerkleSize,
			"chain merkle tree size %d in coinbase, branch implies %d", size, want)
	}
	want := ExpectedChainIndex(nonce, chainID, len(aux.ChainBranch))
	if uint32(aux.ChainIndex) != want {
		return ruleError(ErrAuxWrongChainIndex,
			"chain index %d, nonce %d and chain ID %d require %d",
			aux.ChainIndex, nonce, chainID, want)
	}
	return nil
}

// CheckChainID is the first rule of CheckProofOfWork, the one that needs
// only the 80-byte header: a non-legacy version carries Namecoin's chain ID.
func CheckChainID(h *Header, p *Params) error {
	if !h.IsLegacy() && p.StrictChainID && h.ChainID() != p.AuxPoWChainID {
		return ruleError(ErrBadChainID,
			"block version %08x has chain ID %d, expected %d",
			uint32(h.Version), h.ChainID(), p.AuxPoWChainID)
	}
	return nil
}

// CheckProofOfWork is Namecoin Core's CheckProofOfWork for a header: the
// chain ID, the AuxPoW flag, then the parent's proof of work and the AuxPoW
// commitment, or the header's own hash when it has no AuxPoW. It needs no
// chain context. hash is the header's block hash.
func CheckProofOfWork(fh *FullHeader, hash chainhash.Hash, p *Params) error {
	if err := CheckChainID(&fh.Header, p); err != nil {
		return err
	}
	if fh.AuxPoW == nil {
		if fh.IsAuxPoW() {
			return ruleError(ErrAuxPoWVersionMismatch,
				"no auxpow on block with auxpow version %08x", uint32(fh.Version))
		}
		return checkHashAgainstBits(&hash, fh.Bits, p, "block")
	}
	if !fh.IsAuxPoW() {
		return ruleError(ErrAuxPoWVersionMismatch,
			"auxpow on block with non-auxpow version %08x", uint32(fh.Version))
	}
	aux := fh.AuxPoW
	if aux.ParentHeader.IsAuxPoW() {
		return ruleError(ErrParentHasAuxPoWVersion,
			"auxpow parent block has auxpow version %08x",
			uint32(aux.ParentHeader.Version))
	}
	parentHash := aux.ParentHeader.BlockHash()
	if err := checkHashAgainstBits(&parentHash, fh.Bits, p, "auxpow parent"); err != nil {
		return err
	}
	return CheckAuxPoW(aux, hash, fh.ChainID(), p)
}
