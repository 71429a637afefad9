package headers_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

func bare(blocks []*chaingen.Block) []headers.Prechecked {
	return headers.PrecheckBare(headersOf(blocks), &headers.RegTestParams)
}

// TestStoreVerificationGap follows the gap of unchecked headers through a
// sampled sync's life: 80-byte headers open it, checked ones above it
// leave it, a reorg into it shrinks it, MarkVerified closes it, pruning
// keeps it, and it survives a reopen.
func TestStoreVerificationGap(t *testing.T) {
	p := &headers.RegTestParams
	minKeep := int32(p.MedianTimeSpan) + p.RetargetInterval + 1
	path := filepath.Join(t.TempDir(), "headers.db")
	s, err := headers.OpenStore(path, p, p.GenesisAnchor(), headers.StoreOptions{NoSync: true, KeepHeaders: minKeep})
	if err != nil {
		t.Fatal(err)
	}
	g := chaingen.New(p, 21)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	blocks := g.Chain(6000)
	now := testNow(g)
	if v := s.Verification(); v.Gap || v.Mode() != "fully verified" {
		t.Fatalf("new store: %+v", v)
	}
	if err := s.AddHeaders(1, fullHeaders(t, blocks[:100]), now); err != nil {
		t.Fatal(err)
	}
	// 80-byte headers 101..5000, pruned as they come but never above
	// the gap's low end.
	for i := 100; i < 5000; i += 700 {
		end := min(i+700, 5000)
		if err := s.AddPrechecked(int32(i+1), bare(blocks[i:end]), now); err != nil {
			t.Fatal(err)
		}
	}
	want := headers.Verification{Gap: true, Low: 100, End: 5000}
	if v := s.Verification(); v != want || v.Mode() != "unverified" {
		t.Fatalf("after 80-byte headers: %+v, want %+v", v, want)
	}
	if s.Base() > 100 {
		t.Fatalf("pruned to %d, above the gap's checked low end 100", s.Base())
	}
	// Full headers on top leave the gap as it is.
	if err := s.AddHeaders(5001, fullHeaders(t, blocks[5000:5500]), now); err != nil {
		t.Fatal(err)
	}
	if v := s.Verification(); v != want {
		t.Fatalf("after full headers on top: %+v", v)
	}
	if err := s.MarkSampled(100, 4999); !errors.Is(err, headers.ErrVerificationMoved) {
		t.Fatalf("sampling another range: %v", err)
	}
	if err := s.MarkSampled(100, 5000); err != nil {
		t.Fatal(err)
	}
	want.Sampled = true
	if v := s.Verification(); v != want || v.Mode() != "sampled" {
		t.Fatalf("after the sample: %+v", v)
	}
	// A checked branch forking inside the gap cuts the gap at the fork.
	f := g.Fork(4800, 5)
	f.MinCoinbase, f.MaxCoinbase = 100, 200
	if err := s.AddHeaders(4801, fullHeaders(t, f.Chain(800)), testNow(f)); err != nil {
		t.Fatal(err)
	}
	want.End = 4800
	if v := s.Verification(); v != want {
		t.Fatalf("after a reorg into the gap: %+v, want %+v", v, want)
	}
	if err := s.MarkVerified(2000, f.Blocks[2001].Hash); !errors.Is(err, headers.ErrVerificationMoved) {
		t.Fatalf("verified with a hash not stored there: %v", err)
	}
	if err := s.MarkVerified(2000, f.Blocks[2000].Hash); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkVerified(4801, f.Blocks[4801].Hash); !errors.Is(err, headers.ErrVerificationMoved) {
		t.Fatalf("verified above the gap: %v", err)
	}
	// The state survives a reopen.
	s.Close()
	s, err = headers.OpenStore(path, p, p.GenesisAnchor(), headers.StoreOptions{NoSync: true, KeepHeaders: minKeep})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want.Low = 2000
	if v := s.Verification(); v != want {
		t.Fatalf("after reopen: %+v, want %+v", v, want)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkVerified(4800, f.Blocks[4800].Hash); err != nil {
		t.Fatal(err)
	}
	if v := s.Verification(); v.Gap || v.Mode() != "fully verified" {
		t.Fatalf("after verifying the whole gap: %+v", v)
	}
	// Once verified, pruning catches up at the next commit.
	more := f.Chain(2100)
	if err := s.AddHeaders(more[0].Height, fullHeaders(t, more), testNow(f)); err != nil {
		t.Fatal(err)
	}
	if tip := s.Tip().Height; tip-s.Base()+1 > minKeep+p.RetargetInterval {
		t.Fatalf("base %d tip %d: not pruned after the gap closed", s.Base(), tip)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}

// TestStoreDropUnverified: a gap whose sample failed goes, with what was
// stored above it; the chain below stays.
func TestStoreDropUnverified(t *testing.T) {
	s, _ := openTestStore(t, headers.StoreOptions{NoSync: true})
	g := chaingen.New(&headers.RegTestParams, 22)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	blocks := g.Chain(300)
	now := testNow(g)
	if err := s.AddHeaders(1, fullHeaders(t, blocks[:50]), now); err != nil {
		t.Fatal(err)
	}
	if err := s.DropUnverified(); err != nil || s.Tip().Height != 50 {
		t.Fatalf("without a gap: %v, tip %d", err, s.Tip().Height)
	}
	if err := s.AddPrechecked(51, bare(blocks[50:250]), now); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHeaders(251, fullHeaders(t, blocks[250:]), now); err != nil {
		t.Fatal(err)
	}
	if err := s.DropUnverified(); err != nil {
		t.Fatal(err)
	}
	if tip := s.Tip(); tip.Height != 50 || tip.Hash != blocks[49].Hash {
		t.Fatalf("tip after drop: %d %v", tip.Height, tip.Hash)
	}
	if v := s.Verification(); v.Gap {
		t.Fatalf("gap after drop: %+v", v)
	}
	if _, ok := s.BlockAt(51); ok {
		t.Fatal("a dropped header is still readable")
	}
	// The chain grows again from there.
	if err := s.AddHeaders(51, fullHeaders(t, blocks[50:]), now); err != nil {
		t.Fatal(err)
	}
}

// TestPrecheckBareChainID: the one proof-of-work rule an 80-byte header
// can be held to is its chain ID.
func TestPrecheckBareChainID(t *testing.T) {
	p := headers.MainNetParams
	h := headers.Header{Version: 4 | headers.VersionAuxPoW | 2*headers.VersionChainStart}
	pcs := headers.PrecheckBare([]headers.Header{h}, &p)
	var re headers.RuleError
	if !errors.As(pcs[0].PoWErr, &re) || re.ErrorCode != headers.ErrBadChainID || !pcs[0].Unchecked {
		t.Fatalf("chain ID 2 on mainnet: %+v", pcs[0])
	}
	h.Version = 4 | headers.VersionAuxPoW | 1*headers.VersionChainStart
	if pcs := headers.PrecheckBare([]headers.Header{h}, &p); pcs[0].PoWErr != nil {
		t.Fatalf("chain ID 1: %v", pcs[0].PoWErr)
	}
}
