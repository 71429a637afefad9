package headers

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/internal/testvectors"
)

func vectorParams(t *testing.T, network string) *Params {
	t.Helper()
	p, ok := ParamsByName(network)
	if !ok {
		t.Fatalf("unknown network %q in vectors", network)
	}
	return p
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

// TestRealHeaders parses the real mainnet/testnet headers, re-serializes
// them byte for byte, compares every derived field with the vector and runs
// every check that needs no history.
func TestRealHeaders(t *testing.T) {
	for _, v := range testvectors.AuxPoWHeaders(t) {
		t.Run(fmt.Sprintf("%s-%d", v.Network, v.Height), func(t *testing.T) {
			p := vectorParams(t, v.Network)
			raw := mustHex(t, v.Hex)
			if len(raw) != v.SizeBytes {
				t.Fatalf("vector size %d, hex has %d bytes", v.SizeBytes, len(raw))
			}
			fh, n, err := ParseFullHeader(raw)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if n != len(raw) {
				t.Fatalf("parsed %d of %d bytes", n, len(raw))
			}
			if got := fh.Serialize(); !bytes.Equal(got, raw) {
				t.Fatalf("re-serialization differs")
			}
			hash := fh.BlockHash()
			if hash.String() != v.Hash {
				t.Fatalf("hash %v, want %s", hash, v.Hash)
			}
			if fh.PrevBlock.String() != v.PrevHash || fh.MerkleRoot.String() != v.MerkleRoot {
				t.Fatalf("prev/merkle root mismatch")
			}
			if fmt.Sprintf("%08x", uint32(fh.Version)) != v.Version ||
				fmt.Sprintf("%08x", fh.Bits) != v.Bits ||
				fh.Timestamp != v.Time || fh.Nonce != v.Nonce {
				t.Fatalf("version/bits/time/nonce mismatch: %+v", fh.Header)
			}
			if (fh.AuxPoW != nil) != v.HasAuxPoW {
				t.Fatalf("auxpow presence %v, want %v", fh.AuxPoW != nil, v.HasAuxPoW)
			}
			if fh.AuxPoW != nil {
				checkAuxFields(t, fh.AuxPoW, v)
			}
			if err := CheckProofOfWork(fh, hash, p); err != nil {
				t.Fatalf("CheckProofOfWork: %v", err)
			}
			if v.HexZeroedHashBlck != "" {
				zfh, _, err := ParseFullHeader(mustHex(t, v.HexZeroedHashBlck))
				if err != nil {
					t.Fatalf("parse zeroed: %v", err)
				}
				if zfh.AuxPoW.ParentHash != (chainhash.Hash{}) {
					t.Fatalf("zeroed hashBlock is not zero")
				}
				if err := CheckProofOfWork(zfh, zfh.BlockHash(), p); err != nil {
					t.Fatalf("zeroed hashBlock must verify the same: %v", err)
				}
			}
		})
	}
}

func checkAuxFields(t *testing.T, a *AuxPoW, v testvectors.AuxPoWHeader) {
	t.Helper()
	e := v.Expected
	ph := a.ParentHeader.BlockHash()
	if ph.String() != e.ParentHeaderHash {
		t.Errorf("parent hash %v, want %s", ph, e.ParentHeaderHash)
	}
	if id := a.CoinbaseTx.TxID(); id.String() != e.ParentCoinbaseTxID {
		t.Errorf("coinbase txid %v, want %s", id, e.ParentCoinbaseTxID)
	}
	if len(a.CoinbaseTx.Raw) != e.ParentCoinbaseTxBytes {
		t.Errorf("coinbase %d bytes, want %d", len(a.CoinbaseTx.Raw), e.ParentCoinbaseTxBytes)
	}
	if len(a.CoinbaseBranch) != e.CoinbaseBranchLen || a.CoinbaseIndex != e.CoinbaseIndex ||
		len(a.ChainBranch) != e.ChainBranchLen || a.ChainIndex != e.ChainIndex {
		t.Errorf("branches %d/%d idx %d/%d, want %d/%d idx %d/%d",
			len(a.CoinbaseBranch), len(a.ChainBranch), a.CoinbaseIndex, a.ChainIndex,
			e.CoinbaseBranchLen, e.ChainBranchLen, e.CoinbaseIndex, e.ChainIndex)
	}
	if a.ParentHash.String() != e.HashBlockField {
		t.Errorf("hashBlock %v, want %s", a.ParentHash, e.HashBlockField)
	}
	if fmt.Sprintf("%08x", uint32(a.ParentHeader.Version)) != e.ParentVersion {
		t.Errorf("parent version %08x, want %s", uint32(a.ParentHeader.Version), e.ParentVersion)
	}
	script := a.CoinbaseTx.TxIn[0].SignatureScript
	if got := bytes.Contains(script, MergedMiningMagic); got != e.MagicPresent {
		t.Errorf("magic present %v, want %v", got, e.MagicPresent)
	}
}

// byteRange is a span of a real header and the rule codes a flip inside it
// may produce; an empty codes list means no rule covers it (Core ignores
// those bytes) and the flip must be accepted.
type byteRange struct {
	name       string
	start, end int
	codes      []ErrorCode
}

// auxRanges lays out a real AuxPoW header field by field. The expected
// codes follow Core's order: parent proof of work is checked before the
// AuxPoW, and the coinbase link before the chain root.
func auxRanges(t *testing.T, raw []byte, fh *FullHeader, p *Params) []byteRange {
	t.Helper()
	a := fh.AuxPoW
	cb := HeaderSize
	cbEnd := cb + len(a.CoinbaseTx.Raw)
	hashBlock := cbEnd
	branchStart := hashBlock + 32 + 1 // after hashBlock and the count
	branchEnd := branchStart + 32*len(a.CoinbaseBranch)
	chainCount := branchEnd + 4
	chainIdx := chainCount + 1 + 32*len(a.ChainBranch)
	parent := chainIdx + 4
	if parent+HeaderSize != len(raw) {
		t.Fatalf("layout: parent header at %d, total %d", parent, len(raw))
	}
	ranges := []byteRange{
		{"header prev/merkle root/time", 4, 72, []ErrorCode{ErrAuxMissingChainRoot}},
		// New bits change the target first.
		{"header bits", 72, 76, []ErrorCode{ErrInvalidBits, ErrHighHash, ErrAuxMissingChainRoot}},
		{"header nonce", 76, 80, []ErrorCode{ErrAuxMissingChainRoot}},
		{"coinbase transaction", cb, cbEnd, []ErrorCode{ErrAuxCoinbaseNotInParent}},
		{"hashBlock (ignored by Core)", hashBlock, hashBlock + 32, nil},
		{"coinbase branch", branchStart, branchEnd, []ErrorCode{ErrAuxCoinbaseNotInParent}},
		{"coinbase index (ignored by Core)", branchEnd, branchEnd + 4, nil},
		{"chain index", chainIdx, chainIdx + 4, []ErrorCode{ErrAuxWrongChainIndex, ErrAuxMissingChainRoot}},
		// Any other change to the parent breaks its proof of work, which
		// Core checks first; only its AuxPoW flag is caught before that.
		{"parent header", parent, parent + HeaderSize, []ErrorCode{ErrHighHash, ErrParentHasAuxPoWVersion}},
	}
	// On strict networks a change to the chain ID half of the version is
	// caught first; the low half changes the hash (root missing) or the
	// base version, which no history-free rule reads.
	if p.StrictChainID {
		ranges = append(ranges, byteRange{"header version chain ID", 2, 4, []ErrorCode{ErrBadChainID}})
	}
	return ranges
}

// TestRealHeaderByteFlips flips every byte of the real AuxPoW headers, one
// at a time, and expects the code of the rule covering it (or a parse error
// where the flip breaks the encoding, or acceptance where Core ignores the
// bytes).
func TestRealHeaderByteFlips(t *testing.T) {
	for _, v := range testvectors.AuxPoWHeaders(t) {
		if !v.HasAuxPoW {
			continue
		}
		t.Run(fmt.Sprintf("%s-%d", v.Network, v.Height), func(t *testing.T) {
			p := vectorParams(t, v.Network)
			raw := mustHex(t, v.Hex)
			fh, _, err := ParseFullHeader(raw)
			if err != nil {
				t.Fatal(err)
			}
			codes := map[ErrorCode]int{}
			for _, r := range auxRanges(t, raw, fh, p) {
				for i := r.start; i < r.end; i++ {
					mut := bytes.Clone(raw)
					mut[i] ^= 0x01
					mfh, n, err := ParseFullHeader(mut)
					if err != nil || n != len(mut) {
						continue // encoding broken: rejected before any rule
					}
					err = CheckProofOfWork(mfh, mfh.BlockHash(), p)
					if len(r.codes) == 0 {
						if err != nil {
							t.Fatalf("%s: byte %d is ignored by Core, got %v", r.name, i, err)
						}
						continue
					}
					var re RuleError
					if !errors.As(err, &re) || !slices.Contains(r.codes, re.ErrorCode) {
						t.Fatalf("%s: flip of byte %d gave %v, want one of %v", r.name, i, err, r.codes)
					}
					codes[re.ErrorCode]++
				}
			}
			t.Logf("rejections by code: %v", codes)
		})
	}
}

// TestRealHeaderMutations applies the mutations Electrum-NMC's test file
// uses to the real 19200/19414 headers and expects each rule's own code.
func TestRealHeaderMutations(t *testing.T) {
	byHeight := map[int32]testvectors.AuxPoWHeader{}
	for _, v := range testvectors.AuxPoWHeaders(t) {
		if v.Network == "mainnet" {
			byHeight[v.Height] = v
		}
	}
	v, ok := byHeight[19200]
	if !ok {
		t.Skip("vector 19200 missing")
	}
	p := &MainNetParams
	load := func() *FullHeader {
		fh, _, err := ParseFullHeader(mustHex(t, v.Hex))
		if err != nil {
			t.Fatal(err)
		}
		return fh
	}
	cases := []struct {
		name   string
		mutate func(fh *FullHeader)
		want   ErrorCode
	}{
		{"header time changed: root missing", func(fh *FullHeader) { fh.Timestamp++ }, ErrAuxMissingChainRoot},
		// Any change to the real parent header breaks its proof of work first,
		// which Core checks before the AuxPoW itself.
		{"parent chain ID 1", func(fh *FullHeader) { fh.AuxPoW.ParentHeader.Version |= 1 << 16 }, ErrHighHash},
		{"chain branch 31", func(fh *FullHeader) { fh.AuxPoW.ChainBranch = make([]chainhash.Hash, 31) }, ErrAuxChainBranchTooLong},
		{"parent has auxpow flag", func(fh *FullHeader) { fh.AuxPoW.ParentHeader.Version |= VersionAuxPoW }, ErrParentHasAuxPoWVersion},
		{"own chain ID 2", func(fh *FullHeader) { fh.Version = fh.Version&0xffff | 2<<16 }, ErrBadChainID},
		{"coinbase branch hash changed", func(fh *FullHeader) { fh.AuxPoW.CoinbaseBranch[0][0] ^= 1 }, ErrAuxCoinbaseNotInParent},
		// An empty branch ignores the index, so only the expected-index rule
		// catches it.
		{"chain index 1", func(fh *FullHeader) { fh.AuxPoW.ChainIndex = 1 }, ErrAuxWrongChainIndex},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fh := load()
			c.mutate(fh)
			// Re-encode and parse to prove the mutation survives the wire.
			re, _, err := ParseFullHeader(fh.Serialize())
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			err = CheckProofOfWork(re, re.BlockHash(), p)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// Core ignores the coinbase nIndex (Electrum-NMC does not): a header
	// with nIndex 1 is still valid.
	fh := load()
	fh.AuxPoW.CoinbaseIndex = 1
	if err := CheckProofOfWork(fh, fh.BlockHash(), p); err != nil {
		t.Fatalf("nIndex is consensus-dead in Core, got %v", err)
	}
}
