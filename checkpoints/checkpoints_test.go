package checkpoints

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/internal/testvectors"
)

// TestMainNetMatchesElectrumNMC: the built-in checkpoint is the one the
// released Electrum-NMC 4.0.6 ships, field by field.
func TestMainNetMatchesElectrumNMC(t *testing.T) {
	var f struct {
		FirstTimestamp uint32     `json:"first_timestamp"`
		Height         int32      `json:"height"`
		LastBits       uint32     `json:"last_bits"`
		LastChainwork  jsonNumber `json:"last_chainwork"`
		LastHash       string     `json:"last_hash"`
		MerkleRoot     string     `json:"merkle_root"`
	}
	testvectors.Load(t, "checkpoints-electrum-nmc-v4.0.6.json", &f)
	c := MainNet
	if c.Height != f.Height || c.MerkleRoot.String() != f.MerkleRoot ||
		c.PeriodEndHash.String() != f.LastHash || c.PeriodEndTime != f.FirstTimestamp ||
		c.NextBits != f.LastBits || c.ChainWork.String() != string(f.LastChainwork) {
		t.Fatalf("built-in checkpoint differs from Electrum-NMC 4.0.6: %+v vs %+v", c, f)
	}
	if want := (c.Height+1)/2016*2016 - 1; c.PeriodEnd != want {
		t.Fatalf("period end %d, want %d", c.PeriodEnd, want)
	}
	a := c.Anchor()
	if a.Info.Height != 518111 || a.Info.NextBits != 0x1712db39 || a.Header != nil {
		t.Fatalf("anchor %+v", a.Info)
	}
	if BranchLength(c.Height) != 19 {
		t.Fatalf("branch length for cp 518353: %d, ElectrumX sends 19", BranchLength(c.Height))
	}
}

// jsonNumber keeps a JSON number's digits (chain work overflows
// float64).
type jsonNumber string

func (n *jsonNumber) UnmarshalJSON(b []byte) error {
	*n = jsonNumber(b)
	return nil
}

func hashes(t *testing.T, strs []string) []chainhash.Hash {
	t.Helper()
	out := make([]chainhash.Hash, len(strs))
	for i, s := range strs {
		h, err := chainhash.NewHashFromStr(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = *h
	}
	return out
}

// TestRegtestRecordingProofs checks the cp_height proofs real ElectrumX
// 1.20 gave, and that our root over the recorded chain is its root.
func TestRegtestRecordingProofs(t *testing.T) {
	rec := testvectors.LoadRegtestRecording(t)
	var all []chainhash.Hash
	for _, ch := range rec.Chunks {
		raw, err := hex.DecodeString(ch.Hex)
		if err != nil {
			t.Fatal(err)
		}
		fhs, err := headers.ParseFullHeaders(raw)
		if err != nil {
			t.Fatalf("chunk at %d: %v", ch.Start, err)
		}
		if len(fhs) != ch.Count || int32(len(all)) != ch.Start {
			t.Fatalf("chunk at %d: %d headers, recorded count %d", ch.Start, len(fhs), ch.Count)
		}
		for _, fh := range fhs {
			all = append(all, fh.BlockHash())
		}
	}
	if int32(len(all)) != rec.TipHeight+1 {
		t.Fatalf("%d headers, tip %d", len(all), rec.TipHeight)
	}
	if len(rec.CPProofs) == 0 {
		t.Fatal("no cp proofs recorded")
	}
	for _, p := range rec.CPProofs {
		root := hashes(t, []string{p.Result.Root})[0]
		if ours := headers.MerkleRoot(all[:p.CPHeight+1]); ours != root {
			t.Fatalf("cp %d: our root %v, ElectrumX %v", p.CPHeight, ours, root)
		}
		cp := Checkpoint{Height: p.CPHeight, MerkleRoot: root}
		raw, _ := hex.DecodeString(p.Result.Header)
		h, err := headers.ParseHeader(raw)
		if err != nil || len(raw) != 80 {
			t.Fatalf("cp reply header of %d bytes: %v", len(raw), err)
		}
		branch := hashes(t, p.Result.Branch)
		if err := cp.VerifyHeaderProof(p.Height, h.BlockHash(), branch, root); err != nil {
			t.Fatalf("real proof for %d/%d rejected: %v", p.Height, p.CPHeight, err)
		}
		// Liars: another height, a bent branch, a foreign root.
		if p.Height < p.CPHeight {
			if err := cp.VerifyHeaderProof(p.Height+1, h.BlockHash(), branch, root); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("proof accepted for the wrong height: %v", err)
			}
		}
		if len(branch) > 0 {
			bent := append([]chainhash.Hash(nil), branch...)
			bent[0][5] ^= 1
			if err := cp.VerifyHeaderProof(p.Height, h.BlockHash(), bent, root); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("bent branch accepted: %v", err)
			}
		}
		other := root
		other[0] ^= 1
		if err := cp.VerifyHeaderProof(p.Height, h.BlockHash(), branch, other); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("foreign root accepted: %v", err)
		}
	}
}

func TestTruncatedChunk(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 5)
	g.Chain(100)
	all := make([]chainhash.Hash, len(g.Blocks))
	for i, b := range g.Blocks {
		all[i] = b.Hash
	}
	cp := Checkpoint{Height: 90, MerkleRoot: headers.MerkleRoot(all[:91])}
	start, count := int32(40), 10
	var raw []byte
	for _, b := range g.Blocks[start : start+int32(count)] {
		hb := b.Header.Header.Serialize()
		raw = append(raw, hb[:]...)
	}
	last := int(start) + count - 1
	branch := headers.MerkleBranch(all[:91], last)
	got, err := cp.VerifyTruncatedChunk(start, count, raw, branch, cp.MerkleRoot)
	if err != nil {
		t.Fatalf("valid chunk: %v", err)
	}
	if got[0] != g.Blocks[start].Header.Header {
		t.Fatal("first header differs")
	}

	// ElectrumX 1.19+ sends the wrong number of bytes for AuxPoW chains.
	if _, err := cp.VerifyTruncatedChunk(start, count, raw[:len(raw)-40], branch, cp.MerkleRoot); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("short chunk: %v", err)
	}
	swapped := bytes.Clone(raw)
	copy(swapped[80:160], raw[160:240])
	copy(swapped[160:240], raw[80:160])
	if _, err := cp.VerifyTruncatedChunk(start, count, swapped, branch, cp.MerkleRoot); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("reordered chunk: %v", err)
	}
	// A chunk from a different position with the same proof.
	if _, err := cp.VerifyTruncatedChunk(start+1, count, raw, branch, cp.MerkleRoot); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("shifted chunk: %v", err)
	}
	// Beyond the checkpoint height.
	if err := cp.VerifyHeaderProof(91, all[90], headers.MerkleBranch(all[:91], 90), cp.MerkleRoot); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("height above cp: %v", err)
	}
}

func TestGenesisCheckpoint(t *testing.T) {
	p := &headers.RegTestParams
	c := ForNetwork(p)
	if c.Height != 0 || c.MerkleRoot != p.GenesisHash {
		t.Fatalf("regtest checkpoint %+v", c)
	}
	if err := c.VerifyHeaderProof(0, p.GenesisHash, nil, p.GenesisHash); err != nil {
		t.Fatalf("genesis proves itself: %v", err)
	}
	a := c.Anchor()
	if a.Header == nil || a.Info.Hash != p.GenesisHash || a.Work.Cmp(big.NewInt(2)) != 0 {
		t.Fatalf("genesis anchor %+v work %v", a.Info, a.Work)
	}
	if ForNetwork(&headers.MainNetParams).Height != MainNet.Height {
		t.Fatal("mainnet must use the real checkpoint")
	}
}
