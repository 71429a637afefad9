package chaingen

import (
	"bytes"
	"testing"

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
