package electrumxtest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// TestPadLikeElectrumX: padded lines (with newline) are powers of two of
// at least 1 KiB and still valid JSON.
func TestPadLikeElectrumX(t *testing.T) {
	for _, n := range []int{2, 100, 1022, 1023, 1024, 5000} {
		msg := `{"x":"` + strings.Repeat("a", n) + `"}`
		p := pad([]byte(msg))
		size := len(p) + 1
		if size < 1024 || size&(size-1) != 0 {
			t.Fatalf("len %d: padded line is %d bytes", len(msg), size)
		}
		if !json.Valid(p) {
			t.Fatalf("padded JSON invalid")
		}
	}
}

func TestVersionCompare(t *testing.T) {
	if vcmp("1.4.3", "1.4.10") >= 0 || vcmp("1.4", "1.4.0") != 0 || vcmp("1.10", "1.4.3") <= 0 {
		t.Fatal("vcmp ordering")
	}
}

// TestSplitBugAsObserved: with SplitBug the 80-byte form of
// blockchain.block.headers comes back as ElectrumX 1.20.0 sent it
// (electrumx-observed.md): start 0 is right; from 1, the 80-byte genesis
// and then full-size AuxPoW boundaries split the joined headers into the
// wrong number of pieces, each cut to 80 bytes. The cp_height tree is the
// one headers.MerkleBranch builds, asked under several cp_heights.
func TestSplitBugAsObserved(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 3)
	g.Chain(20)
	b := FromChain(g)
	hexLen := func(start, count int64) int {
		return len(b.appendSplitBugHex(nil, start, count)) / 2
	}
	// Three pieces for two headers of about 1.5 KB, as 1.20.0's 240 bytes.
	if got := hexLen(1, 2); got == 160 || got%80 != 0 {
		t.Fatalf("start 1, count 2: %d bytes, want a wrong multiple of 80", got)
	}
	if got := len(b.appendJoinedHex(nil, 0, 3, true)) / 2; got != 240 {
		t.Fatalf("start 0: %d bytes", got)
	}
	for _, cp := range []int32{19, 7, 19, 20} {
		for h := int32(0); h <= cp; h += 3 {
			branch, root := b.cpProof(h, cp)
			leaves := make([]chainhash.Hash, cp+1)
			for i := range leaves {
				leaves[i] = g.Blocks[i].Hash
			}
			want := headers.MerkleBranch(leaves, int(h))
			if root != headers.MerkleRoot(leaves) || len(branch) != len(want) {
				t.Fatalf("cp %d height %d: root or branch length differs", cp, h)
			}
			for i := range want {
				if branch[i] != want[i] {
					t.Fatalf("cp %d height %d: branch[%d] differs", cp, h, i)
				}
			}
		}
	}
}
