package headers_test

import (
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/testvectors"
)

// TestRegtestRecordingChain verifies and stores the 5,284 AuxPoW headers
// that real Namecoin Core regtest produced (served by ElectrumX 1.20): every
// rule must accept what Core accepted.
func TestRegtestRecordingChain(t *testing.T) {
	rec := testvectors.LoadRegtestRecording(t)
	p := &headers.RegTestParams
	s, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, p.GenesisAnchor(), headers.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ch := range rec.Chunks {
		raw, err := hex.DecodeString(ch.Hex)
		if err != nil {
			t.Fatal(err)
		}
		fhs, err := headers.ParseFullHeaders(raw)
		if err != nil {
			t.Fatal(err)
		}
		start := ch.Start
		if start == 0 { // genesis is the anchor
			if fhs[0].BlockHash() != p.GenesisHash {
				t.Fatal("recorded genesis differs from the regtest parameters")
			}
			fhs, start = fhs[1:], 1
		}
		if err := s.AddHeaders(start, fhs, time.Now()); err != nil {
			t.Fatalf("real regtest chunk at %d rejected: %v", ch.Start, err)
		}
	}
	tip := s.Tip()
	if tip.Height != rec.TipHeight || tip.Hash.String() != rec.TipHash {
		t.Fatalf("tip %d %v, recorded %d %s", tip.Height, tip.Hash, rec.TipHeight, rec.TipHash)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}
