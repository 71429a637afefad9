package spv

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSampleCount: the samples a security target needs (docs/sampled-sync.md).
func TestSampleCount(t *testing.T) {
	for _, c := range []struct {
		fake float64
		bits int
		want int
	}{
		{0.10, 40, 541}, // the target: under 90 % of the claimed work, 2^-40
		{0.05, 40, 1096},
		{0.05, 8, 220},
		{0, 40, 0},
	} {
		if got := SampleCount(c.fake, c.bits); got != c.want {
			t.Errorf("SampleCount(%v, %d) = %d, want %d", c.fake, c.bits, got, c.want)
		}
	}
}

// TestSampleCatchRate: a chain of 5,000 headers of equal work in which
// 5 % carry no valid work, placed where the draw is thinnest (the oldest
// headers), in the middle, at random, or just below the newest: over many
// seeds, the draw misses them all no more often than the stated bound
// (2^-8 with SampleCount(0.05, 8) samples) allows.
func TestSampleCatchRate(t *testing.T) {
	const n, seeds, bits = 5000, 4000, 8
	cum := make([]float64, n)
	for i := range cum {
		cum[i] = float64(i + 1)
	}
	k := SampleCount(0.05, bits)
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
					fake[n-n/10-n/20+i] = true // below the newest tenth, which is checked whole
				case "random":
					fake[int32(rng.IntN(n))] = true
				}
			}
			caught := false
			for _, h := range SampleHeights(rng, cum, 0, k) {
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

// TestSampleHeights: sorted, unique, inside the range; the same seed
// draws the same heights.
func TestSampleHeights(t *testing.T) {
	cum := []float64{1, 3, 6, 10, 15, 21, 28, 36}
	a := SampleHeights(rand.New(rand.NewPCG(1, 2)), cum, 100, 50)
	b := SampleHeights(rand.New(rand.NewPCG(1, 2)), cum, 100, 50)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%v %v", a, b)
	}
	for i, h := range a {
		if h != b[i] || h < 100 || h > 107 || (i > 0 && h <= a[i-1]) {
			t.Fatalf("heights %v", a)
		}
	}
	if SampleHeights(rand.New(rand.NewPCG(1, 2)), nil, 0, 5) != nil {
		t.Fatal("heights from an empty range")
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
