package headers_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// benchChainLen is the size of the benchmark chain: 20,160 AuxPoW headers
// (ten 2016-header chunks) with 1-2 KB parent coinbases.
const benchChainLen = 10 * 2016

var benchChain = sync.OnceValues(func() (*chaingen.Generator, [][]byte) {
	g := chaingen.New(&headers.RegTestParams, 2024)
	g.Chain(benchChainLen)
	chunks := make([][]byte, 0, benchChainLen/2016)
	for start := 1; start <= benchChainLen; start += 2016 {
		chunks = append(chunks, g.Joined(start, min(2016, benchChainLen+1-start)))
	}
	return g, chunks
})

func benchBytes(chunks [][]byte) int64 {
	var n int64
	for _, c := range chunks {
		n += int64(len(c))
	}
	return n
}

// BenchmarkVerifyAuxPoWHeaders parses and fully verifies (every rule,
// contextual ones included) the chain from its wire bytes, on one core.
func BenchmarkVerifyAuxPoWHeaders(b *testing.B) {
	g, chunks := benchChain()
	now := time.Unix(int64(g.Tip().Info.Time)+3600, 0)
	b.SetBytes(benchBytes(chunks))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		prev := g.Blocks[0].Info
		for _, c := range chunks {
			fhs, err := headers.ParseFullHeaders(c)
			if err != nil {
				b.Fatal(err)
			}
			vh, err := headers.VerifyHeaders(g, prev, fhs, now, g.Params)
			if err != nil {
				b.Fatal(err)
			}
			prev = vh[len(vh)-1].Info
		}
	}
	b.ReportMetric(float64(benchChainLen*b.N)/b.Elapsed().Seconds(), "headers/s")
}

// BenchmarkVerifyAndStore parses, verifies and commits the chain into a
// fresh bbolt store in 2016-header transactions, with fsync on.
func BenchmarkVerifyAndStore(b *testing.B) {
	g, chunks := benchChain()
	now := time.Unix(int64(g.Tip().Info.Time)+3600, 0)
	b.SetBytes(benchBytes(chunks))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := headers.OpenStore(filepath.Join(b.TempDir(), "h.db"), g.Params,
			g.Params.GenesisAnchor(), headers.StoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := int32(1)
		for _, c := range chunks {
			fhs, err := headers.ParseFullHeaders(c)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.AddHeaders(start, fhs, now); err != nil {
				b.Fatal(err)
			}
			start += int32(len(fhs))
		}
		b.StopTimer()
		if s.Tip().Height != benchChainLen {
			b.Fatalf("tip %d", s.Tip().Height)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchChainLen*b.N)/b.Elapsed().Seconds(), "headers/s")
}

// BenchmarkParseFullHeaders decodes the chain's wire bytes into headers,
// with no rule checked: the parsing share of the sync's CPU.
func BenchmarkParseFullHeaders(b *testing.B) {
	_, chunks := benchChain()
	b.SetBytes(benchBytes(chunks))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			if _, err := headers.ParseFullHeaders(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchChainLen*b.N)/b.Elapsed().Seconds(), "headers/s")
}

// BenchmarkPrecheck is the part of verification that the sync runs on
// each chunk as it arrives: parse, block hash and proof of work.
func BenchmarkPrecheck(b *testing.B) {
	g, chunks := benchChain()
	b.SetBytes(benchBytes(chunks))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			fhs, err := headers.ParseFullHeaders(c)
			if err != nil {
				b.Fatal(err)
			}
			for _, pc := range headers.Precheck(fhs, g.Params) {
				if pc.PoWErr != nil {
					b.Fatal(pc.PoWErr)
				}
			}
		}
	}
	b.ReportMetric(float64(benchChainLen*b.N)/b.Elapsed().Seconds(), "headers/s")
}
