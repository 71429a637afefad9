package headers

import (
	"bytes"
	"fmt"
	"math/big"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// compactTarget expands compact bits into a 256-bit big-endian target
// without allocating, and reports Core's negative and overflow flags.
func compactTarget(bits uint32) (t [32]byte, negative, overflow bool) {
	size := int(bits >> 24)
	mant := bits & 0x007fffff
	negative = mant != 0 && bits&0x00800000 != 0
	overflow = mant != 0 && (size > 34 ||
		(mant > 0xff && size > 33) ||
		(mant > 0xffff && size > 32))
	if overflow {
		return t, negative, overflow
	}
	if size <= 3 {
		mant >>= 8 * uint(3-size)
		t[29], t[30], t[31] = byte(mant>>16), byte(mant>>8), byte(mant)
		return t, negative, false
	}
	// The mantissa's three bytes end at byte index 32-(size-3)-1.
	for i, v := range [3]byte{byte(mant >> 16), byte(mant >> 8), byte(mant)} {
		pos := 32 - size + i
		if pos >= 0 && pos < 32 {
			t[pos] = v
		}
	}
	return t, negative, false
}

// CompactToBig returns the target encoded by compact bits (the sign is
// ignored; use DeriveTarget for validation).
func CompactToBig(bits uint32) *big.Int {
	t, _, overflow := compactTarget(bits)
	if overflow {
		return new(big.Int)
	}
	return new(big.Int).SetBytes(t[:])
}

// BigToCompact encodes a non-negative target in compact form, rounding down
// as Core's GetCompact does.
func BigToCompact(n *big.Int) uint32 {
	if n.Sign() <= 0 {
		return 0
	}
	size := uint32(len(n.Bytes()))
	var mant uint32
	if size <= 3 {
		mant = uint32(n.Uint64()) << (8 * (3 - size))
	} else {
		mant = uint32(new(big.Int).Rsh(n, uint(8*(size-3))).Uint64())
	}
	// A set sign bit would make it negative: move one byte into the size.
	if mant&0x00800000 != 0 {
		mant >>= 8
		size++
	}
	return size<<24 | mant
}

// DeriveTarget checks compact bits as Core's DeriveTarget does and returns
// the target as a 32-byte big-endian number.
func DeriveTarget(bits uint32, p *Params) ([32]byte, error) {
	t, negative, overflow := compactTarget(bits)
	var limit [32]byte
	p.PowLimit.FillBytes(limit[:])
	switch {
	case negative:
		return t, ruleError(ErrInvalidBits, "bits %08x encode a negative target", bits)
	case overflow:
		return t, ruleError(ErrInvalidBits, "bits %08x overflow 256 bits", bits)
	case t == [32]byte{}:
		return t, ruleError(ErrInvalidBits, "bits %08x encode a zero target", bits)
	case bytes.Compare(t[:], limit[:]) > 0:
		return t, ruleError(ErrInvalidBits,
			"bits %08x are above the %s proof-of-work limit %08x",
			bits, p.Name, p.PowLimitBits)
	}
	return t, nil
}

// hashMeetsTarget compares a hash (little-endian number) with a big-endian
// target.
func hashMeetsTarget(h *chainhash.Hash, target *[32]byte) bool {
	for i := 0; i < 32; i++ {
		hb, tb := h[31-i], target[i]
		if hb != tb {
			return hb < tb
		}
	}
	return true
}

// checkHashAgainstBits is Core's CheckProofOfWork(hash, bits, params).
func checkHashAgainstBits(h *chainhash.Hash, bits uint32, p *Params, what string) error {
	target, err := DeriveTarget(bits, p)
	if err != nil {
		return err
	}
	if !hashMeetsTarget(h, &target) {
		// *h, not h: a pointer in the arguments would move every
		// caller's hash to the heap, two allocations per header.
		return ruleError(ErrHighHash, "%s hash %v is above target %x (bits %08x)",
			what, *h, target, bits)
	}
	return nil
}

var oneLsh256 = new(big.Int).Lsh(big.NewInt(1), 256)

// CalcWork returns the expected number of hashes for a block with these
// bits: 2^256 / (target+1), as Core's GetBlockProof.
func CalcWork(bits uint32) *big.Int {
	t, negative, overflow := compactTarget(bits)
	target := new(big.Int).SetBytes(t[:])
	if negative || overflow || target.Sign() == 0 {
		return new(big.Int)
	}
	return target.Div(oneLsh256, target.Add(target, big.NewInt(1)))
}

// BlockInfo is what the contextual rules need to know about an earlier
// block on the chain being extended.
type BlockInfo struct {
	Height int32
	Hash   chainhash.Hash
	Time   uint32
	Bits   uint32
	// NextBits, when non-zero, is the bits the next block must carry. A
	// checkpoint sets it because the history to compute it is not stored.
	NextBits uint32
	// LastNormalBits are the bits of the newest block at or before this one
	// that is a period start or not a minimum-difficulty block: what Core's
	// testnet rule walks back to find. Zero on networks without that rule.
	LastNormalBits uint32
}

// ChainContext gives the contextual rules access to ancestors.
type ChainContext interface {
	// BlockAt returns the block at height on the chain being extended, or
	// false if that height is not known (not yet stored, or pruned).
	BlockAt(height int32) (BlockInfo, bool)
}

// ErrMissingAncestor is returned when a check needs an ancestor that the
// chain context does not hold. It is not a rule violation.
type ErrMissingAncestor struct {
	Height int32
	Reason string
}

func (e ErrMissingAncestor) Error() string {
	return fmt.Sprintf("block %d is needed for %s but is not stored", e.Height, e.Reason)
}

// NextWorkRequired returns the bits a block with time newTime must carry on
// top of prev: Namecoin Core's GetNextWorkRequired, with Namecoin's retarget
// window (2016 blocks back once merge mining has started, which closes the
// time-warp hole) and testnet's minimum-difficulty rule.
func NextWorkRequired(prev BlockInfo, newTime uint32, ctx ChainContext, p *Params) (uint32, error) {
	if prev.NextBits != 0 {
		return prev.NextBits, nil
	}
	if (prev.Height+1)%p.RetargetInterval != 0 {
		if p.AllowMinDifficulty && int64(newTime) > p.MinDifficultySince {
			// khal's port compared times unsigned, so an earlier time than
			// the previous block's also allows minimum difficulty; Core
			// keeps that bug.
			if int64(newTime) > int64(prev.Time)+2*p.TargetSpacing ||
				newTime < prev.Time {
				return p.PowLimitBits, nil
			}
			return prev.LastNormalBits, nil
		}
		return prev.Bits, nil
	}
	if p.NoRetargeting {
		return prev.Bits, nil
	}
	blocksBack := p.RetargetInterval - 1
	if prev.Height >= p.AuxPoWStartHeight && prev.Height+1 > p.RetargetInterval {
		blocksBack = p.RetargetInterval
	}
	first, ok := ctx.BlockAt(prev.Height - blocksBack)
	if !ok {
		return 0, ErrMissingAncestor{prev.Height - blocksBack, "the retarget window"}
	}
	return calcNextRequired(prev, int64(first.Time), p), nil
}

// calcNextRequired is Core's CalculateNextWorkRequired.
func calcNextRequired(prev BlockInfo, firstTime int64, p *Params) uint32 {
	span := int64(prev.Time) - firstTime
	span = max(span, p.TargetTimespan/4)
	span = min(span, p.TargetTimespan*4)
	n := CompactToBig(prev.Bits)
	n.Mul(n, big.NewInt(span))
	n.Div(n, big.NewInt(p.TargetTimespan))
	if n.Cmp(p.PowLimit) > 0 {
		n.Set(p.PowLimit)
	}
	return BigToCompact(n)
}

// lastNormalBits computes BlockInfo.LastNormalBits for a new block at
// height with bits on top of prev.
func lastNormalBits(height int32, bits uint32, prev BlockInfo, p *Params) uint32 {
	if !p.AllowMinDifficulty {
		return 0
	}
	if height%p.RetargetInterval == 0 || bits != p.PowLimitBits {
		return bits
	}
	return prev.LastNormalBits
}

// MedianTimePast is the median time of prev and the MedianTimeSpan-1
// blocks before it, or of all blocks down to genesis near the start of the
// chain, as Core's GetMedianTimePast. A missing ancestor above genesis is
// ErrMissingAncestor: a median over fewer blocks than Core's would demand a
// later time than Core does and refuse valid blocks (right after a
// checkpoint anchor, for one).
func MedianTimePast(prev BlockInfo, ctx ChainContext, p *Params) (uint32, error) {
	var buf [32]uint32
	times := buf[:0]
	times = append(times, prev.Time)
	for h := prev.Height - 1; h >= 0 && len(times) < p.MedianTimeSpan; h-- {
		b, ok := ctx.BlockAt(h)
		if !ok {
			return 0, ErrMissingAncestor{h, "the median time past"}
		}
		times = append(times, b.Time)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
