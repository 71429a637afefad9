package headers

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ncspv/ncspv/internal/testvectors"
)

func TestCompactRoundTrip(t *testing.T) {
	cases := []struct {
		bits      uint32
		hex       string
		canonical bool // GetCompact would produce these bits
	}{
		{0x1d00ffff, "ffff0000000000000000000000000000000000000000000000000000", true},
		// Genesis bits are not in Core's normal form (it would write
		// 1b7fff00), so only the decoding is checked.
		{0x1c007fff, "7fff00000000000000000000000000000000000000000000000000", false},
		{0x207fffff, "7fffff0000000000000000000000000000000000000000000000000000000000", true},
		{0x1b00b269, "b269000000000000000000000000000000000000000000000000", true},
		{0x1712db39, "12db390000000000000000000000000000000000000000", true},
		{0x03123456, "123456", true},
		{0x02123400, "1234", true},
		{0x01120000, "12", true},
	}
	for _, c := range cases {
		want, _ := new(big.Int).SetString(c.hex, 16)
		if got := CompactToBig(c.bits); got.Cmp(want) != 0 {
			t.Errorf("CompactToBig(%08x) = %x, want %x", c.bits, got, want)
		}
		if got := BigToCompact(want); c.canonical && got != c.bits {
			t.Errorf("BigToCompact(%x) = %08x, want %08x", want, got, c.bits)
		}
	}
	for _, p := range []*Params{&MainNetParams, &TestNetParams, &RegTestParams} {
		if got := BigToCompact(p.PowLimit); got != p.PowLimitBits {
			t.Errorf("%s: powLimit compact %08x, params say %08x", p.Name, got, p.PowLimitBits)
		}
		if h := p.GenesisHeader.BlockHash(); h != p.GenesisHash {
			t.Errorf("%s: genesis header hashes to %v, want %v", p.Name, h, p.GenesisHash)
		}
	}
}

// TestRealCheckpointTargets: the compact form of each full-precision target
// in Electrum-NMC's checkpoint list is the bits real headers carry.
func TestRealCheckpointTargets(t *testing.T) {
	var f struct {
		Entries []struct {
			TargetHex string `json:"target_next_chunk_hex"`
			Bits      string `json:"bits_next_chunk"`
		} `json:"entries"`
	}
	testvectors.Load(t, "checkpoints-electrum-nmc-annotated.json", &f)
	entries := f.Entries
	if len(entries) < 100 {
		t.Skipf("unexpected annotated checkpoint format (%d entries)", len(entries))
	}
	for i, e := range entries {
		n, ok := new(big.Int).SetString(e.TargetHex, 16)
		if !ok || e.Bits == "" {
			t.Skipf("entry %d lacks target_hex/bits_of_next_chunk fields", i)
		}
		if got := BigToCompact(n); formatBits(got) != e.Bits {
			t.Errorf("entry %d: compact %08x, real bits %s", i, got, e.Bits)
		}
	}
}

func formatBits(b uint32) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		out[i] = digits[b&0xf]
		b >>= 4
	}
	return string(out)
}

func TestDeriveTarget(t *testing.T) {
	p := &MainNetParams
	for _, c := range []struct {
		bits uint32
		ok   bool
	}{
		{0x1d00ffff, true},
		{0x1b00b269, true},
		{0x1d010000, false}, // above the limit
		{0x1d80ffff, false}, // negative
		{0x00000000, false}, // zero
		{0x01003456, false}, // rounds to zero
		{0xff123456, false}, // overflow
	} {
		_, err := DeriveTarget(c.bits, p)
		if (err == nil) != c.ok {
			t.Errorf("DeriveTarget(%08x): err %v, want ok=%v", c.bits, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidBits) {
			t.Errorf("DeriveTarget(%08x): %v is not ErrInvalidBits", c.bits, err)
		}
	}
}

func TestCalcWork(t *testing.T) {
	if got := CalcWork(0x1d00ffff); got.Cmp(big.NewInt(0x100010001)) != 0 {
		t.Fatalf("work of 1d00ffff = %v, want 4295032833", got)
	}
	if CalcWork(0x1d80ffff).Sign() != 0 {
		t.Fatal("negative target must have no work")
	}
}

// mapCtx is a chain context from a map, for retarget tests.
type mapCtx map[int32]BlockInfo

func (m mapCtx) BlockAt(h int32) (BlockInfo, bool) {
	b, ok := m[h]
	return b, ok
}

func TestNextWorkRequiredMainnet(t *testing.T) {
	p := &MainNetParams
	const bits = 0x1b00b269
	span := uint32(p.TargetTimespan)
	ctx := mapCtx{}
	prev := func(h int32, tm uint32) BlockInfo { return BlockInfo{Height: h, Time: tm, Bits: bits} }

	// Not a retarget height: copy.
	if got, err := NextWorkRequired(prev(19300, 1e9), 1e9+600, ctx, p); err != nil || got != bits {
		t.Fatalf("mid-period: %08x %v", got, err)
	}

	// After merge-mining start the window starts 2016 blocks back (the
	// last block of the previous period): Namecoin's time-warp fix.
	last := int32(2016*20 - 1)
	ctx[last-2016] = BlockInfo{Height: last - 2016, Time: 1e9}
	ctx[last-2015] = BlockInfo{Height: last - 2015, Time: 1e9 + span/2}
	got, err := NextWorkRequired(prev(last, 1e9+span), 0, ctx, p)
	if err != nil || got != bits {
		t.Fatalf("exact timespan over 2016 back: %08x %v, want %08x", got, err, uint32(bits))
	}

	// Before merge mining (Bitcoin's off-by-one window, 2015 back).
	early := int32(2016*5 - 1)
	ctx[early-2015] = BlockInfo{Height: early - 2015, Time: 1e9}
	ctx[early-2016] = BlockInfo{Height: early - 2016, Time: 1e9 - span}
	if got, _ := NextWorkRequired(prev(early, 1e9+span), 0, ctx, p); got != bits {
		t.Fatalf("pre-auxpow window: %08x, want %08x", got, uint32(bits))
	}

	// Clamps: a quarter and four times the target, and the limit.
	ctx[last-2016] = BlockInfo{Height: last - 2016, Time: 1e9}
	fast, _ := NextWorkRequired(prev(last, 1e9+1), 0, ctx, p)
	want := BigToCompact(new(big.Int).Div(CompactToBig(bits), big.NewInt(4)))
	if fast != want {
		t.Fatalf("fast period: %08x, want %08x", fast, want)
	}
	slow, _ := NextWorkRequired(prev(last, 1e9+span*10), 0, ctx, p)
	want = BigToCompact(new(big.Int).Mul(CompactToBig(bits), big.NewInt(4)))
	if slow != want {
		t.Fatalf("slow period: %08x, want %08x", slow, want)
	}
	easy := BlockInfo{Height: last, Time: 1e9 + span*10, Bits: 0x1d00ffff}
	if got, _ := NextWorkRequired(easy, 0, ctx, p); got != p.PowLimitBits {
		t.Fatalf("capped at limit: %08x", got)
	}

	// Missing window start.
	_, err = NextWorkRequired(prev(2016*30-1, 1e9), 0, mapCtx{}, p)
	var miss ErrMissingAncestor
	if !errors.As(err, &miss) || miss.Height != 2016*29-1 {
		t.Fatalf("missing ancestor: %v", err)
	}

	// A checkpoint's NextBits wins.
	cp := BlockInfo{Height: 518111, Time: 1596445637, Bits: 1, NextBits: 0x1712db39}
	if got, _ := NextWorkRequired(cp, 0, mapCtx{}, p); got != 0x1712db39 {
		t.Fatalf("checkpoint next bits: %08x", got)
	}
}

func TestNextWorkRequiredTestnetMinDifficulty(t *testing.T) {
	p := &TestNetParams
	const normal = 0x1c0fffff
	since := uint32(p.MinDifficultySince)
	prev := BlockInfo{Height: 1000, Time: since + 10000, Bits: p.PowLimitBits, LastNormalBits: normal}
	cases := []struct {
		name string
		tm   uint32
		want uint32
	}{
		{"over 20 minutes later", prev.Time + 1201, p.PowLimitBits},
		{"earlier than prev (khal's bug)", prev.Time - 1, p.PowLimitBits},
		{"on time: last normal bits", prev.Time + 600, normal},
	}
	for _, c := range cases {
		if got, _ := NextWorkRequired(prev, c.tm, mapCtx{}, p); got != c.want {
			t.Errorf("%s: %08x, want %08x", c.name, got, c.want)
		}
	}
	old := BlockInfo{Height: 1000, Time: since - 5000, Bits: normal}
	if got, _ := NextWorkRequired(old, since-4000, mapCtx{}, p); got != normal {
		t.Errorf("before MinDifficultySince: %08x", got)
	}
	if got := lastNormalBits(1001, p.PowLimitBits, prev, p); got != normal {
		t.Errorf("min-difficulty block keeps last normal bits: %08x", got)
	}
	if got := lastNormalBits(2016, p.PowLimitBits, prev, p); got != p.PowLimitBits {
		t.Errorf("period start stops the walk: %08x", got)
	}
}

func TestMedianTimePast(t *testing.T) {
	p := &MainNetParams
	ctx := mapCtx{}
	times := []uint32{5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11, 100}
	for i, tm := range times {
		ctx[int32(i)] = BlockInfo{Height: int32(i), Time: tm}
	}
	// Blocks 1..11: {1,9,3,7,2,8,4,6,10,11,100} sorted median = 7.
	if got, err := MedianTimePast(ctx[11], ctx, p); err != nil || got != 7 {
		t.Fatalf("MTP = %d, %v, want 7", got, err)
	}
	// Near genesis every block down to 0 counts: {5,1,9} median 5.
	if got, err := MedianTimePast(ctx[2], ctx, p); err != nil || got != 5 {
		t.Fatalf("MTP of 3 = %d, %v, want 5", got, err)
	}
	// Above genesis a missing ancestor is not skipped: a median over
	// fewer blocks than Core's would refuse valid blocks.
	delete(ctx, 3)
	var missing ErrMissingAncestor
	if _, err := MedianTimePast(ctx[11], ctx, p); !errors.As(err, &missing) || missing.Height != 3 {
		t.Fatalf("MTP with block 3 missing: %v, want ErrMissingAncestor at 3", err)
	}
}
