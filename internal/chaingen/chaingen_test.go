package chaingen

import (
	"bytes"
	"testing"
	"time"

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

// TestSlim: slim blocks have empty merkle branches and, with a small
// coinbase, stay under 400 bytes (Core regtest's are 294), so that a
// single header's reply is under 1 KiB; and they verify.
func TestSlim(t *testing.T) {
	p := &headers.RegTestParams
	g := New(p, 9)
	g.MinCoinbase, g.MaxCoinbase, g.Slim = 60, 94, true
	g.Chain(40)
	for _, b := range g.Blocks[1:] {
		if n := len(b.Raw); n < 250 || n >= 400 {
			t.Fatalf("block %d is %d bytes", b.Height, n)
		}
		if len(b.Header.AuxPoW.CoinbaseBranch) != 0 || len(b.Header.AuxPoW.ChainBranch) != 0 {
			t.Fatalf("block %d has merkle branches", b.Height)
		}
	}
	fhs, err := headers.ParseFullHeaders(g.Joined(1, 40))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := headers.VerifyHeaders(g, g.Blocks[0].Info, fhs, time.Unix(int64(g.Tip().Info.Time), 0), p); err != nil {
		t.Fatal(err)
	}
}
