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
//
// Work fractions: the sampled range and, above it, a tail that is checked
// in full (the newest period) make up the work fraction x in [0, 1); the
// tail is x in [1-tail, 1). The draw alternates, starting with the first,
// between
//   - uniform in the sampled range's work, and
//   - FlyClient's density (Bünz, Kiffer, Luu, Zamani, IEEE S&P 2020)
//     g(x) = 1/((1-x) ln(1/tail)) on [0, 1-tail], which grows toward the
//     tip: a forger with some real hash power must put his fakes after
//     his fork point, and the later he forks, the more the fork's share
//     of these points exceeds its share of the work. As in FlyClient,
//     the tail it leaves out is the part checked in full.

// Bounds of the tail share: below minTail the density would put almost
// every point in the last few headers of the range; above maxTail the
// range is mostly checked in full anyway.
const (
	minTail = 1e-6
	maxTail = 0.5
)

func clampTail(tail float64) float64 {
	if math.IsNaN(tail) {
		return maxTail
	}
	return min(max(tail, minTail), maxTail)
}

// flyClientMin is the least probability that one point of FlyClient's
// density lands on headers carrying the share fake of the sampled
// range's work: they are where g is thinnest, the oldest, the first
// fake·(1-tail) of x.
func flyClientMin(fake, tail float64) float64 {
	tail = clampTail(tail)
	return -math.Log1p(-fake*(1-tail)) / math.Log(1/tail)
}

// SampleCount is how many samples catch, with probability at least
// 1-2^-bits, a chain in which headers without valid work carry at least
// the share fake of the claimed work of the sampled range, drawn by
// SampleHeights with the same tail. Each uniform point misses them with
// probability at most 1-fake, each FlyClient point with at most
// 1-flyClientMin, whatever the adversary placed where; the points are
// independent, so the draw misses with at most the product.
func SampleCount(fake, tail float64, bits int) int {
	if fake <= 0 || fake >= 1 || bits <= 0 {
		return 0
	}
	uniform := -math.Log1p(-fake)
	fly := -math.Log1p(-flyClientMin(fake, tail))
	need := float64(bits) * math.Ln2
	// Points alternate uniform, FlyClient, …: after 2m points the draw
	// has m of each.
	pairs := math.Ceil(need / (uniform + fly))
	k := int(2 * pairs)
	if (pairs-1)*(uniform+fly)+uniform >= need {
		k-- // the last uniform point alone reaches the target
	}
	return k
}

// SampleHeights draws k heights of the range whose cumulative work is
// cum (cum[i] is the work of headers first..first+i, increasing), above
// which a tail holding the share tail of the work is checked in full (see
// the top of this file). rng must be seeded from local cryptographic
// randomness after the server has committed to the chain. Heights come
// back sorted, without repeats.
func SampleHeights(rng *rand.Rand, cum []float64, first int32, k int, tail float64) []int32 {
	n := len(cum)
	if n == 0 || k <= 0 {
		return nil
	}
	total := cum[n-1]
	seen := map[int32]bool{}
	for _, y := range sampleFractions(rng, k, tail) {
		// The header holding the range's work fraction y.
		i := sort.SearchFloat64s(cum, y*total)
		seen[first+int32(min(i, n-1))] = true
	}
	out := make([]int32, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sampleFractions draws k work fractions of the sampled range, in [0, 1),
// alternating uniform and FlyClient's density, the uniform first.
func sampleFractions(rng *rand.Rand, k int, tail float64) []float64 {
	tail = clampTail(tail)
	ys := make([]float64, k)
	for i := range ys {
		u := rng.Float64()
		ys[i] = u
		if i%2 == 1 {
			// Inverse of FlyClient's CDF G(x) = ln(1-x)/ln(tail) on
			// [0, 1-tail], x = 1 - tail^u, as a fraction of the range.
			ys[i] = (1 - math.Pow(tail, u)) / (1 - tail)
		}
	}
	return ys
}

// FlyClientShare is the share of FlyClient's points (SampleHeights' odd
// ones) that land in the newest share top of the sampled range: how
// strongly the draw watches the tip.
func FlyClientShare(top, tail float64) float64 {
	tail = clampTail(tail)
	top = min(max(top, 0), 1)
	// G(1-tail) - G((1-top)(1-tail)) with G(x) = ln(1-x)/ln(tail).
	return 1 - math.Log(1-(1-top)*(1-tail))/math.Log(tail)
}
