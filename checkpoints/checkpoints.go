// Package checkpoints holds the built-in checkpoints (real mainnet facts)
// and checks ElectrumX cp_height proofs against them.
//
// A checkpoint has two parts. The anchor is the last block P of a retarget
// period: its hash, time, the bits of the next period and the chain work up
// to it; header sync starts right after P. The cp_height merkle root covers
// the hashes of every block 0..Height, so a header below the checkpoint can
// be proven with 80 bytes and a branch instead of downloading its history.
package checkpoints

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

// Checkpoint is a trusted point of one network's chain.
type Checkpoint struct {
	// Height is the cp_height: MerkleRoot covers blocks 0..Height.
	Height     int32
	MerkleRoot chainhash.Hash

	// PeriodEnd is the last block of the last complete retarget period at
	// or below Height; sync resumes after it.
	PeriodEnd     int32
	PeriodEndHash chainhash.Hash
	// PeriodEndTime starts the timespan of the period after next, which
	// Namecoin measures from the last block of the previous period.
	PeriodEndTime uint32
	// NextBits are the bits of every block in PeriodEnd+1 .. PeriodEnd+2016.
	NextBits uint32
	// ChainWork is the total work up to and including PeriodEnd.
	ChainWork *big.Int

	// genesis marks a checkpoint that is the network's genesis block,
	// whose full header is known.
	genesis *headers.Params
}

// MainNet is the checkpoint Electrum-NMC 4.0.6 ships
// (electrum_nmc/electrum/checkpoints.json at tag nc4.0.6): cp_height
// 518353, the period ending at block 518111.
var MainNet = Checkpoint{
	Height:        518353,
	MerkleRoot:    mustHash("476a138d228b66a094c20d5bbaea3230ea60201ba16af81500c5f368b06dc48b"),
	PeriodEnd:     518111,
	PeriodEndHash: mustHash("c419b67ab80ecdf97d612eeff831e987702d6b6f829de3f7b253d61ab638a09d"),
	PeriodEndTime: 1596445637,
	NextBits:      387111737, // 0x1712db39
	ChainWork:     mustBig("4546820646585446597056942848"),
}

// Genesis is the checkpoint at a network's genesis block: the whole chain
// is synced and no header is below it.
func Genesis(p *headers.Params) Checkpoint {
	return Checkpoint{
		Height:        0,
		MerkleRoot:    p.GenesisHash, // a tree of one leaf is the leaf
		PeriodEnd:     0,
		PeriodEndHash: p.GenesisHash,
		PeriodEndTime: p.GenesisHeader.Timestamp,
		ChainWork:     headers.CalcWork(p.GenesisHeader.Bits),
		genesis:       p,
	}
}

// ForNetwork returns the built-in checkpoint of a network: the real one on
// mainnet, genesis on testnet and regtest.
func ForNetwork(p *headers.Params) Checkpoint {
	if p == &headers.MainNetParams {
		return MainNet
	}
	return Genesis(p)
}

// Anchor is where a new header store starts for this checkpoint.
func (c Checkpoint) Anchor() headers.Anchor {
	if c.genesis != nil {
		return c.genesis.GenesisAnchor()
	}
	return headers.Anchor{
		Info: headers.BlockInfo{
			Height: c.PeriodEnd,
			Hash:   c.PeriodEndHash,
			Time:   c.PeriodEndTime,
			// The period end's own bits are not part of the checkpoint;
			// nothing after it needs them because NextBits is given. The
			// next block starts a period, so testnet's minimum-difficulty
			// walk stops there, at NextBits.
			NextBits:       c.NextBits,
			LastNormalBits: c.NextBits,
		},
		Work: new(big.Int).Set(c.ChainWork),
	}
}

// ErrInvalidProof is wrapped by every proof failure.
var ErrInvalidProof = errors.New("invalid checkpoint proof")

// BranchLength is the number of hashes in a cp_height proof: the depth of
// a Bitcoin merkle tree over cpHeight+1 leaves.
func BranchLength(cpHeight int32) int {
	return bits.Len32(uint32(cpHeight))
}

// VerifyHeaderProof checks an ElectrumX blockchain.block.header(height,
// cp_height) reply: the block hash at height leads through branch to the
// checkpoint's root. root is the root the server claimed.
func (c Checkpoint) VerifyHeaderProof(height int32, hash chainhash.Hash, branch []chainhash.Hash, root chainhash.Hash) error {
	if root != c.MerkleRoot {
		return fmt.Errorf("%w: server root %v is not the checkpoint root %v",
			ErrInvalidProof, root, c.MerkleRoot)
	}
	// Above Height the duplicated last leaf would let the proof of block
	// Height pass for Height+1.
	if height < 0 || height > c.Height {
		return fmt.Errorf("%w: height %d is outside the checkpoint's 0..%d",
			ErrInvalidProof, height, c.Height)
	}
	if want := BranchLength(c.Height); len(branch) != want {
		return fmt.Errorf("%w: branch has %d hashes, a tree of %d blocks needs %d",
			ErrInvalidProof, len(branch), c.Height+1, want)
	}
	if got := headers.MerkleBranchRoot(hash, branch, uint32(height)); got != c.MerkleRoot {
		return fmt.Errorf("%w: block %v at height %d leads to root %v",
			ErrInvalidProof, hash, height, got)
	}
	return nil
}

// VerifyTruncatedChunk checks a blockchain.block.headers(start, count,
// cp_height) reply: exactly count 80-byte headers, each linked to the one
// before, and the last proven by branch. It returns the headers. It trusts
// nothing of the reply's framing: ElectrumX 1.19 and later cut AuxPoW
// headers wrongly here, which shows up as a wrong length or broken links.
func (c Checkpoint) VerifyTruncatedChunk(start int32, count int, raw []byte, branch []chainhash.Hash, root chainhash.Hash) ([]headers.Header, error) {
	if count <= 0 || len(raw) != count*headers.HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes for %d truncated headers (want %d)",
			ErrInvalidProof, len(raw), count, count*headers.HeaderSize)
	}
	out := make([]headers.Header, count)
	var prev chainhash.Hash
	for i := range out {
		h, _ := headers.ParseHeader(raw[i*headers.HeaderSize:])
		if i > 0 && h.PrevBlock != prev {
			return nil, fmt.Errorf("%w: header %d does not link to %d",
				ErrInvalidProof, start+int32(i), start+int32(i)-1)
		}
		prev = h.BlockHash()
		out[i] = h
	}
	if err := c.VerifyHeaderProof(start+int32(count)-1, prev, branch, root); err != nil {
		return nil, err
	}
	return out, nil
}

func mustHash(s string) chainhash.Hash {
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		panic(err)
	}
	return *h
}

func mustBig(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad decimal " + s)
	}
	return n
}
