package spv

import (
	"math"
	"math/rand/v2"
	"sort"
)

// The sampled sync (issue 18) takes the 80-byte header chain whole and
// checks the proof of work of a random sample of its AuxPoW headers that
// the server cannot predict. This file is the sampling: how many samples
// a security target needs, and which heights to draw. docs/sampled-sync.md
// derives both.

// SampleCount is how many samples catch, with probability at least
// 1-2^-bits, a chain in which headers without valid work carry at least
// the fraction fake of the claimed work of the sampled range, when half
// the samples are drawn uniformly in work (SampleHeights): each of those
// lands on a fake header with probability at least fake, so each sample
// of the whole draw does with probability at least fake/2.
func SampleCount(fake float64, bits int) int {
	if fake <= 0 || fake >= 1 || bits <= 0 {
		return 0
	}
	return int(math.Ceil(float64(bits) * math.Ln2 / -math.Log1p(-fake/2)))
}

// SampleHeights draws k heights of the range whose cumulative work is
// cum (cum[i] is the work of headers first..first+i, increasing): half
// uniformly in work, half with FlyClient's density, which grows toward
// the tip (Bünz, Kiffer, Luu, Zamani, IEEE S&P 2020: g(x) = 1/((1-x)
// ln(1/delta)) over the work fraction x, delta being the share of the
// newest tenth of the range, which the draw reaches with certainty in the
// limit). rng must be seeded from local cryptographic randomness after the
// server has committed to the chain. Heights come back sorted, without
// repeats.
func SampleHeights(rng *rand.Rand, cum []float64, first int32, k int) []int32 {
	n := len(cum)
	if n == 0 || k <= 0 {
		return nil
	}
	total := cum[n-1]
	delta := 0.1
	seen := map[int32]bool{}
	at := func(x float64) int32 { // the header holding work fraction x
		i := sort.SearchFloat64s(cum, x*total)
		return first + int32(min(i, n-1))
	}
	for i := range k {
		u := rng.Float64()
		x := u
		if i%2 == 1 {
			// Inverse of FlyClient's CDF G(x) = ln(1-x)/ln(delta) on
			// [0, 1-delta]: x = 1 - delta^u.
			x = 1 - math.Pow(delta, u)
		}
		seen[at(x)] = true
	}
	out := make([]int32, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
