package headers_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// testNow is after every generated block and fixed, so that the
// future-time rule is deterministic.
func testNow(g *chaingen.Generator) time.Time {
	return time.Unix(int64(g.Tip().Info.Time)+3600, 0)
}

func verifyBlocks(t *testing.T, g *chaingen.Generator, prev headers.BlockInfo, blocks []*chaingen.Block, now time.Time) ([]headers.VerifiedHeader, error) {
	t.Helper()
	fhs := make([]*headers.FullHeader, len(blocks))
	for i, b := range blocks {
		// Go through the wire form, as a server would send it.
		fh, n, err := headers.ParseFullHeader(b.Raw)
		if err != nil || n != len(b.Raw) {
			t.Fatalf("generated block %d does not parse: %v", b.Height, err)
		}
		fhs[i] = fh
	}
	return headers.VerifyHeaders(g, prev, fhs, now, g.Params)
}

// TestVerifyReturnsVerifiedPrefix: a failing run returns the headers
// before the failure, which the sync keeps when the failure is only our
// clock's.
func TestVerifyReturnsVerifiedPrefix(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 3)
	blocks := g.Chain(10)
	now := time.Unix(int64(blocks[5].Info.Time)-g.Params.MaxFutureBlockTime, 0) // blocks[6] is too new
	vh, err := verifyBlocks(t, g, g.Blocks[0].Info, blocks, now)
	if !errors.Is(err, headers.ErrTimeTooNew) || len(vh) != 6 || vh[5].Info.Hash != blocks[5].Info.Hash {
		t.Fatalf("got %d headers, %v", len(vh), err)
	}
}

func TestGeneratedChainVerifies(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 1)
	blocks := g.Chain(300)
	vh, err := verifyBlocks(t, g, g.Blocks[0].Info, blocks, testNow(g))
	if err != nil {
		t.Fatalf("valid generated chain rejected: %v", err)
	}
	if len(vh) != len(blocks) {
		t.Fatalf("verified %d of %d", len(vh), len(blocks))
	}
	for i, b := range blocks {
		if vh[i].Info != b.Info {
			t.Fatalf("height %d: info %+v, generator says %+v", b.Height, vh[i].Info, b.Info)
		}
		if n := len(b.Header.AuxPoW.CoinbaseTx.Raw); n < 1000 || n > 2000 {
			t.Fatalf("coinbase of %d bytes, want 1-2 KB", n)
		}
	}
}

// rejection is one invalid block and the rule code it must be refused with
// (btcd fullblocktests style).
type rejection struct {
	name string
	spec func(g *chaingen.Generator) chaingen.Spec
	want headers.ErrorCode
}

func scriptSpec(f func(magic, root, sn []byte) []byte) func(*chaingen.Generator) chaingen.Spec {
	return func(*chaingen.Generator) chaingen.Spec {
		return chaingen.Spec{ChainBranchLen: 2, Script: f}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func fixed(s chaingen.Spec) func(*chaingen.Generator) chaingen.Spec {
	return func(*chaingen.Generator) chaingen.Spec { return s }
}

var rejections = []rejection{
	{"chain ID 2", fixed(chaingen.Spec{Version: 4 | headers.VersionAuxPoW | 2<<16}), headers.ErrBadChainID},
	{"parent has auxpow flag", fixed(chaingen.Spec{ParentVersion: 0x20000000 | headers.VersionAuxPoW}), headers.ErrParentHasAuxPoWVersion},
	{"parent chain ID 1", fixed(chaingen.Spec{ParentVersion: 1<<16 | 4}), headers.ErrAuxParentChainID},
	{"chain branch length 31", fixed(chaingen.Spec{ChainBranchLen: 31}), headers.ErrAuxChainBranchTooLong},
	{"coinbase not in parent", fixed(chaingen.Spec{BadParentRoot: true}), headers.ErrAuxCoinbaseNotInParent},
	{"coinbase without inputs", fixed(chaingen.Spec{NoCoinbaseIns: true}), headers.ErrAuxCoinbaseNoInputs},
	{"root missing", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(m, make([]byte, 32), sn)
	}), headers.ErrAuxMissingChainRoot},
	{"two magics", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(m, r, sn, m)
	}), headers.ErrAuxMultipleMagic},
	{"root before magic", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(r, m, sn)
	}), headers.ErrAuxMagicNotBeforeRoot},
	{"two roots, magic before the second", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(r, m, r, sn)
	}), headers.ErrAuxMagicNotBeforeRoot},
	{"magic with a gap before root", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(m, []byte{0}, r, sn)
	}), headers.ErrAuxMagicNotBeforeRoot},
	{"no magic, root at byte 21", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(make([]byte, 21), r, sn)
	}), headers.ErrAuxRootTooLate},
	{"size and nonce cut short", scriptSpec(func(m, r, sn []byte) []byte {
		return cat(m, r, sn[:7])
	}), headers.ErrAuxMissingSizeNonce},
	{"wrong merkle size", fixed(chaingen.Spec{ChainBranchLen: 2, MerkleSize: 3}), headers.ErrAuxWrongMerkleSize},
	{"wrong nonce", scriptSpec(func(m, r, sn []byte) []byte {
		bad := bytes.Clone(sn)
		bad[4] ^= 1
		return cat(m, r, bad)
	}), headers.ErrAuxWrongChainIndex},
	{"wrong chain index", fixed(chaingen.Spec{ChainBranchLen: 3, ChainIndexDelta: 1}), headers.ErrAuxWrongChainIndex},
	{"negative bits", fixed(chaingen.Spec{Bits: 0x20ffffff}), headers.ErrInvalidBits},
	{"bits above the limit", fixed(chaingen.Spec{Bits: 0x2100ffff}), headers.ErrInvalidBits},
	{"parent misses target", fixed(chaingen.Spec{WeakPoW: true}), headers.ErrHighHash},
	{"own hash misses target", fixed(chaingen.Spec{NoAuxPoW: true, WeakPoW: true}), headers.ErrHighHash},
	{"legacy version 1", fixed(chaingen.Spec{Version: 1}), headers.ErrLateLegacyBlock},
	{"bits not the required work", fixed(chaingen.Spec{Bits: 0x207ffffe}), headers.ErrBadDiffBits},
	{"time at median time past", func(g *chaingen.Generator) chaingen.Spec {
		mtp, err := headers.MedianTimePast(g.Tip().Info, g, g.Params)
		if err != nil {
			panic(err)
		}
		return chaingen.Spec{Time: mtp}
	}, headers.ErrTimeTooOld},
	{"time more than 2h ahead", func(g *chaingen.Generator) chaingen.Spec {
		return chaingen.Spec{Time: uint32(testNow(g).Unix()) + 2*3600 + 1}
	}, headers.ErrTimeTooNew},
	{"base version 3 after BIP65", fixed(chaingen.Spec{Version: 3 | headers.VersionAuxPoW | 1<<16}), headers.ErrBadVersion},
	{"prev hash not the tip", fixed(chaingen.Spec{PrevBlock: &chainhash.Hash{1}}), headers.ErrBadPrevBlock},
}

// TestRejections checks one invalid block per rule on top of a valid
// regtest chain, each refused with its own code.
func TestRejections(t *testing.T) {
	seen := map[headers.ErrorCode]bool{}
	for i, c := range rejections {
		t.Run(c.name, func(t *testing.T) {
			g := chaingen.New(&headers.RegTestParams, uint64(100+i))
			g.Chain(20)
			now := testNow(g)
			bad := g.Build(c.spec(g))
			_, err := verifyBlocks(t, g, g.Tip().Info, []*chaingen.Block{bad}, now)
			var re headers.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("want RuleError %v, got %v", c.want, err)
			}
			if re.ErrorCode != c.want {
				t.Fatalf("got %v (%v), want %v", re.ErrorCode, err, c.want)
			}
			seen[c.want] = true
		})
	}
	// Every code that wire data can trigger has a vector. The version
	// mismatch cannot come from the wire (the flag decides what is parsed)
	// and has its own test below.
	for c := headers.ErrorCode(0); c.String() != "Unknown ErrorCode ("+itoa(int(c))+")"; c++ {
		if c == headers.ErrAuxPoWVersionMismatch {
			continue
		}
		if !seen[c] {
			t.Errorf("no rejection vector for %v", c)
		}
	}
}

func itoa(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestAuxPoWVersionMismatch(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 7)
	b := g.Next(chaingen.Spec{})
	fh := *b.Header
	fh.AuxPoW = nil // flag set, no data
	if err := headers.CheckProofOfWork(&fh, fh.BlockHash(), g.Params); !errors.Is(err, headers.ErrAuxPoWVersionMismatch) {
		t.Fatalf("flag without data: got %v", err)
	}
	fh = *b.Header
	fh.Version &^= headers.VersionAuxPoW // data, no flag
	if err := headers.CheckProofOfWork(&fh, fh.BlockHash(), g.Params); !errors.Is(err, headers.ErrAuxPoWVersionMismatch) {
		t.Fatalf("data without flag: got %v", err)
	}
}

// TestAcceptedEdgeCases are shapes Core accepts and a stricter client
// might wrongly refuse.
func TestAcceptedEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		spec chaingen.Spec
	}{
		{"no magic, root at byte 20", chaingen.Spec{ChainBranchLen: 2, Script: func(m, r, sn []byte) []byte {
			return cat(make([]byte, 20), r, sn)
		}}},
		{"no magic, root at byte 0", chaingen.Spec{Script: func(m, r, sn []byte) []byte { return cat(r, sn) }}},
		{"magic at the end of a long script", chaingen.Spec{ChainBranchLen: 1, Script: func(m, r, sn []byte) []byte {
			return cat(make([]byte, 60), m, r, sn)
		}}},
		{"chain branch of 30", chaingen.Spec{ChainBranchLen: 30}},
		{"extra bytes after size and nonce", chaingen.Spec{Script: func(m, r, sn []byte) []byte {
			return cat(m, r, sn, []byte("pool tag"))
		}}},
		{"segwit parent coinbase", chaingen.Spec{SegwitCoinbase: 1}},
		{"plain parent coinbase", chaingen.Spec{SegwitCoinbase: -1}},
		{"non-auxpow block after auxpow start", chaingen.Spec{NoAuxPoW: true}},
		{"time one second after MTP", chaingen.Spec{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := chaingen.New(&headers.RegTestParams, uint64(500+i))
			g.Chain(15)
			b := g.Build(c.spec)
			if _, err := verifyBlocks(t, g, g.Tip().Info, []*chaingen.Block{b}, testNow(g)); err != nil {
				t.Fatalf("Core accepts this, we refused: %v", err)
			}
		})
	}
}

// TestForkVerifiesAgainstItsOwnBranch: a competing branch is checked with
// the shared history below the fork, never the blocks it replaces.
func TestForkVerifiesAgainstItsOwnBranch(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 9)
	g.Chain(30)
	f := g.Fork(20, 99)
	fb := f.Chain(15)
	if _, err := verifyBlocks(t, g, g.Blocks[20].Info, fb, testNow(f)); err != nil {
		t.Fatalf("fork rejected: %v", err)
	}
}

func TestErrorCodeStringer(t *testing.T) {
	for c := headers.ErrorCode(0); ; c++ {
		s := c.String()
		if s == "Unknown ErrorCode ("+itoa(int(c))+")" {
			if c < headers.ErrBadPrevBlock {
				t.Fatalf("code %d has no name", c)
			}
			break
		}
		if s == "" {
			t.Fatalf("code %d empty name", c)
		}
	}
	if got := headers.ErrorCode(9999).String(); got != "Unknown ErrorCode (9999)" {
		t.Fatalf("unknown code string %q", got)
	}
	err := error(headers.RuleError{ErrorCode: headers.ErrHighHash, Description: "x"})
	wrapped := errors.Join(errors.New("ctx"), err)
	if !errors.Is(wrapped, headers.ErrHighHash) || errors.Is(wrapped, headers.ErrBadDiffBits) {
		t.Fatal("errors.Is does not match codes through wrapping")
	}
}
