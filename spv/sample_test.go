package spv

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// mainnetTail is the newest period's share of the work above a gap as
// long as mainnet's from its checkpoint in December 2026, at equal bits.
const mainnetTail = 2016.0 / (330684 + 2016)

// TestSampleCount: the samples a security target needs (docs/sampled-sync.md).
func TestSampleCount(t *testing.T) {
	for _, c := range []struct {
		fake, tail float64
		bits       int
		want       int
	}{
		{0.10, mainnetTail, 40, 440}, // the target: under 90 % of the claimed work, 2^-40
		{0.05, mainnetTail, 40, 905},
		{0.10, 0.5, 40, 305}, // a longer tail leaves FlyClient's points less to the tip
		{0.05, 0.05, 8, 164},
		{0, mainnetTail, 40, 0},
		{0.10, 0, 40, SampleCount(0.10, minTail, 40)}, // a tail of nothing is clamped, not a division by zero
	} {
		if got := SampleCount(c.fake, c.tail, c.bits); got != c.want {
			t.Errorf("SampleCount(%v, %v, %d) = %d, want %d", c.fake, c.tail, c.bits, got, c.want)
		}
	}
	// One point fewer must miss the target: the count is the least.
	k := SampleCount(0.10, mainnetTail, 40)
	miss := func(k int) float64 {
		u, f := (k+1)/2, k/2
		return math.Pow(0.9, float64(u)) * math.Pow(1-flyClientMin(0.10, mainnetTail), float64(f))
	}
	if bound := math.Pow(2, -40); miss(k) > bound || miss(k-1) <= bound {
		t.Errorf("%d points miss with %g, %d with %g; the bound is %g", k, miss(k), k-1, miss(k-1), bound)
	}
}

// sampleChain is the cumulative work of n headers of equal work.
func sampleChain(n int) []float64 {
	cum := make([]float64, n)
	for i := range cum {
		cum[i] = float64(i + 1)
	}
	return cum
}

// TestSampleCatchRate: a range of 5,000 headers of equal work under a
// tail of 5 % checked in full, in which 5 % of the headers carry no valid
// work, placed where the draw is thinnest (the oldest headers), in the
// middle, at random, or just below the tail: over many seeds, the draw
// misses them all no more often than the stated bound (2^-8 with
// SampleCount(0.05, tail, 8) samples) allows.
func TestSampleCatchRate(t *testing.T) {
	const n, seeds, bits, tail = 5000, 4000, 8, 0.05
	cum := sampleChain(n)
	k := SampleCount(0.05, tail, bits)
	bound := math.Pow(2, -bits)
	for _, place := range []string{"oldest", "middle", "random", "newest"} {
		misses := 0
		for seed := range uint64(seeds) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fake := map[int32]bool{}
			for i := range int32(n / 20) {
				switch place {
				case "oldest":
					fake[i] = true
				case "middle":
					fake[n/2+i] = true
				case "newest":
					fake[n-n/20+i] = true
				case "random":
					fake[int32(rng.IntN(n))] = true
				}
			}
			caught := false
			for _, h := range SampleHeights(rng, cum, 0, k, tail) {
				if fake[h] {
					caught = true
					break
				}
			}
			if !caught {
				misses++
			}
		}
		// The bound holds per draw; allow the binomial spread of 4,000
		// draws (mean 15.6 misses at the bound) before calling it broken.
		if limit := int(seeds*bound*2) + 5; misses > limit {
			t.Errorf("%s: missed %d of %d chains with 5%% fake work, the bound allows about %.1f", place, misses, seeds, seeds*bound)
		}
		t.Logf("%s: missed %d of %d (bound %.1f)", place, misses, seeds, seeds*bound)
	}
}

// TestSampleTowardTheTip: FlyClient's points land in the newest shares of
// the range as often as its density says, up to the last headers below
// the tail (a late fork), and the uniform ones as often as their share.
func TestSampleTowardTheTip(t *testing.T) {
	const draws, k = 400, 440
	rng := rand.New(rand.NewPCG(3, 4))
	for _, top := range []float64{0.10, 0.01, 0.001} {
		inTop := [2]int{} // uniform, FlyClient
		for range draws {
			for i, y := range sampleFractions(rng, k, mainnetTail) {
				if y < 0 || y >= 1 {
					t.Fatalf("work fraction %v outside the range", y)
				}
				if y >= 1-top {
					inTop[i%2]++
				}
			}
		}
		per := float64(draws * k / 2)
		for half, want := range []float64{top, FlyClientShare(top, mainnetTail)} {
			got := float64(inTop[half]) / per
			// Binomial spread of per points: four standard deviations.
			if sd := math.Sqrt(want * (1 - want) / per); math.Abs(got-want) > 4*sd {
				t.Errorf("newest %v of the range, half %d: %.4f of the points, want %.4f", top, half, got, want)
			}
		}
	}
	if s := FlyClientShare(0.10, mainnetTail); s < 0.5 {
		t.Errorf("FlyClient's points in the newest tenth: %.3f, want over half", s)
	}
}

// FuzzParseBare: an 80-byte header chunk is accepted only as count
// headers that link together, and never panics.
func FuzzParseBare(f *testing.F) {
	f.Add(make([]byte, 160), 2)
	f.Add(make([]byte, 80), 1)
	f.Add([]byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, raw []byte, count int) {
		if count < 0 || count > 50 {
			return
		}
		hdrs, err := parseBare(raw, count)
		if err != nil {
			if !errors.Is(err, errGarbled) {
				t.Fatalf("error %v is not errGarbled", err)
			}
			return
		}
		if len(hdrs) != count || len(raw) != 80*count {
			t.Fatalf("%d headers from %d bytes for %d", len(hdrs), len(raw), count)
		}
		for i := 1; i < len(hdrs); i++ {
			if hdrs[i].PrevBlock != hdrs[i-1].BlockHash() {
				t.Fatalf("header %d does not link", i)
			}
		}
	})
}

// TestRequestSizes: 80-byte chunks fill ElectrumX's padded 256 KiB reply
// without passing it, whatever the cp_height's branch length; packed
// counts split a range into replies that each surely fit the power of
// two they fill.
func TestRequestSizes(t *testing.T) {
	for _, cp := range []int32{5000, 334715, 850000, 1 << 22} {
		n := bareChunkFor(cp)
		levels := 0
		for w := int64(cp) + 1; w > 1; w = (w + 1) / 2 {
			levels++
		}
		// {"hex":"…","count":n,"max":2016,"branch":[levels × "64 hex",],"root":"64 hex"} and a newline.
		reply := int(n)*160 + levels*67 + 150
		if reply > 256<<10 || reply < 250<<10 {
			t.Errorf("cp %d: %d headers make a %d-byte reply; want it just under 256 KiB", cp, n, reply)
		}
	}
	const avg, sd = 3340.0, 580.0 // mainnet: 1.67 KB headers as hex
	total, requests := 0, 0
	padded := 0.0
	for rest := 2016; rest > 0; {
		n := packCount(rest, avg, sd)
		if n < 1 || n > rest {
			t.Fatalf("packCount(%d) = %d", rest, n)
		}
		size := float64(n)*avg + 1024
		class := 4096.0
		for class < size {
			class *= 2
		}
		if class > maxPackedReply {
			t.Fatalf("%d headers need a %v-byte reply, over %d", n, class, maxPackedReply)
		}
		padded += class
		total += n
		requests++
		rest -= n
	}
	if waste := padded/(2016*avg) - 1; waste > 0.12 || requests > 20 {
		t.Errorf("2016 headers in %d requests waste %.0f%% to padding", requests, 100*waste)
	}
}
