package headers

import (
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// CheckHeaderContext is Namecoin Core's ContextualCheckBlockHeader for h on
// top of prev: the legacy-version ban, the required bits, median time past,
// the future-time limit and the BIP34/66/65 base versions, in Core's order.
func CheckHeaderContext(h *Header, prev BlockInfo, ctx ChainContext, now time.Time, p *Params) error {
	height := prev.Height + 1
	if h.IsLegacy() && !p.AllowLegacyBlocks(height) {
		return ruleError(ErrLateLegacyBlock,
			"legacy version-1 block at height %d, not allowed from %d",
			height, p.LegacyBlocksBefore)
	}
	want, err := NextWorkRequired(prev, h.Timestamp, ctx, p)
	if err != nil {
		return err
	}
	if h.Bits != want {
		return ruleError(ErrBadDiffBits,
			"block bits %08x at height %d, required %08x", h.Bits, height, want)
	}
	mtp, err := MedianTimePast(prev, ctx, p)
	if err != nil {
		return err
	}
	if h.Timestamp <= mtp {
		return ruleError(ErrTimeTooOld,
			"block time %d is not after the median time past %d", h.Timestamp, mtp)
	}
	if limit := now.Unix() + p.MaxFutureBlockTime; int64(h.Timestamp) > limit {
		return ruleError(ErrTimeTooNew,
			"block time %d is more than %ds ahead of now (%d)",
			h.Timestamp, p.MaxFutureBlockTime, now.Unix())
	}
	base := h.BaseVersion()
	if (base < 2 && height >= p.BIP34Height) ||
		(base < 3 && height >= p.BIP66Height) ||
		(base < 4 && height >= p.BIP65Height) {
		return ruleError(ErrBadVersion,
			"block version %08x (base %d) is outdated at height %d",
			uint32(h.Version), base, height)
	}
	return nil
}

// VerifiedHeader is a header that passed every check, with what the store
// and later checks need about it.
type VerifiedHeader struct {
	Header Header
	Info   BlockInfo
	// Unchecked: came in 80-byte form; its proof of work is not checked
	// (a sampled sync, see Verification).
	Unchecked bool
}

// overlay shows a run of new headers on top of a chain context. Heights at
// or above the run's start come only from the run, so a competing branch
// never sees the blocks it would replace.
type overlay struct {
	base  ChainContext
	start int32
	run   []VerifiedHeader
}

func (o *overlay) BlockAt(height int32) (BlockInfo, bool) {
	if height < o.start {
		return o.base.BlockAt(height)
	}
	if i := int(height - o.start); i < len(o.run) {
		return o.run[i].Info, true
	}
	return BlockInfo{}, false
}

// VerifyHeaders checks hdrs as the blocks after prev: each must link to the
// one before it and pass CheckProofOfWork and CheckHeaderContext. The first
// failure ends the run; its error names the height and wraps the RuleError,
// and the headers verified before it are returned with it.
func VerifyHeaders(ctx ChainContext, prev BlockInfo, hdrs []*FullHeader, now time.Time, p *Params) ([]VerifiedHeader, error) {
	return VerifyPrechecked(ctx, prev, Precheck(hdrs, p), now, p)
}

// Prechecked is a header with the outcome of its context-free checks
// (CheckProofOfWork), which can run on another core ahead of the
// contextual ones.
type Prechecked struct {
	// Header is the 80-byte header only: the contextual rules need no
	// AuxPoW, so a caller can drop it (most of the bytes) once checked.
	Header Header
	Hash   chainhash.Hash
	PoWErr error
	// Unchecked: the header came without its AuxPoW (80-byte form), so
	// only the rules that need none ran (CheckChainID); its proof of work
	// is left to a sampled or later check.
	Unchecked bool
}

// PrecheckBare prechecks 80-byte headers: the chain ID, which needs no
// AuxPoW, and nothing of the proof of work.
func PrecheckBare(hdrs []Header, p *Params) []Prechecked {
	out := make([]Prechecked, len(hdrs))
	for i := range hdrs {
		out[i] = Prechecked{Header: hdrs[i], Hash: hdrs[i].BlockHash(), Unchecked: true,
			PoWErr: CheckChainID(&hdrs[i], p)}
	}
	return out
}

// Precheck hashes hdrs and runs CheckProofOfWork on each. It never fails:
// outcomes are kept per header, so that VerifyPrechecked reports the first
// bad header with the same rule, in the same order, as VerifyHeaders.
func Precheck(hdrs []*FullHeader, p *Params) []Prechecked {
	out := make([]Prechecked, len(hdrs))
	for i, fh := range hdrs {
		out[i] = Prechecked{Header: fh.Header, Hash: fh.BlockHash()}
		out[i].PoWErr = CheckProofOfWork(fh, out[i].Hash, p)
	}
	return out
}

// VerifyPrechecked finishes VerifyHeaders for prechecked headers: the
// link, the precheck outcome, then the contextual rules, header by header.
// On an error it also returns the headers verified before the failing one.
func VerifyPrechecked(ctx ChainContext, prev BlockInfo, pcs []Prechecked, now time.Time, p *Params) ([]VerifiedHeader, error) {
	ov := &overlay{base: ctx, start: prev.Height + 1,
		run: make([]VerifiedHeader, 0, len(pcs))}
	for _, pc := range pcs {
		h, hash := &pc.Header, pc.Hash
		height := prev.Height + 1
		err := checkLink(h, prev)
		if err == nil {
			err = pc.PoWErr
		}
		if err == nil {
			err = CheckHeaderContext(h, prev, ov, now, p)
		}
		if err != nil {
			return ov.run, fmt.Errorf("header %v at height %d: %w", hash, height, err)
		}
		info := NextBlockInfo(prev, h, hash, p)
		ov.run = append(ov.run, VerifiedHeader{Header: *h, Info: info, Unchecked: pc.Unchecked})
		prev = info
	}
	return ov.run, nil
}

func checkLink(h *Header, prev BlockInfo) error {
	if h.PrevBlock != prev.Hash {
		return ruleError(ErrBadPrevBlock,
			"previous block %v is not %v at height %d",
			h.PrevBlock, prev.Hash, prev.Height)
	}
	return nil
}

// NextBlockInfo is the BlockInfo of header h (whose hash is hash) on top
// of prev.
func NextBlockInfo(prev BlockInfo, h *Header, hash chainhash.Hash, p *Params) BlockInfo {
	height := prev.Height + 1
	return BlockInfo{
		Height:         height,
		Hash:           hash,
		Time:           h.Timestamp,
		Bits:           h.Bits,
		LastNormalBits: lastNormalBits(height, h.Bits, prev, p),
	}
}

// GenesisInfo is the BlockInfo of the network's genesis block.
func (p *Params) GenesisInfo() BlockInfo {
	return BlockInfo{
		Height:         0,
		Hash:           p.GenesisHash,
		Time:           p.GenesisHeader.Timestamp,
		Bits:           p.GenesisHeader.Bits,
		LastNormalBits: lastNormalBits(0, p.GenesisHeader.Bits, BlockInfo{}, p),
	}
}
