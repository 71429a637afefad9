// Package testvectors finds the real Namecoin data in ../shared/vectors
// beside the repository. Tests read it in place and never copy it into the
// repository; when it is absent they skip and say why.
package testvectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir overrides where the vectors are looked for.
const EnvDir = "NCSPV_VECTORS"

// Dir returns the vectors directory, or "" when it cannot be found.
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	// Walk up to the module root (the directory with go.mod); the shared
	// folder sits beside it.
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			v := filepath.Join(filepath.Dir(d), "shared", "vectors")
			if st, err := os.Stat(v); err == nil && st.IsDir() {
				return v
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Path returns the path of a vectors file, skipping the test when the file
// is not there.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	d := Dir()
	if d == "" {
		tb.Skipf("real Namecoin vectors not found (../shared/vectors beside the "+
			"repository, or $%s): skipping test that needs %s", EnvDir, name)
	}
	p := filepath.Join(d, name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("vector file %s is missing: %v", p, err)
	}
	return p
}

// Load decodes a JSON vectors file into v, skipping when it is absent.
func Load(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, name))
	if err != nil {
		tb.Fatalf("read %s: %v", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", name, err)
	}
}

// AuxPoWHeader is one entry of auxpow-mainnet-headers.json.
type AuxPoWHeader struct {
	Network           string `json:"network"`
	Height            int32  `json:"height"`
	Hash              string `json:"hash"`
	PrevHash          string `json:"prev_hash"`
	MerkleRoot        string `json:"merkle_root"`
	Version           string `json:"version"`
	Time              uint32 `json:"time"`
	Bits              string `json:"bits"`
	Nonce             uint32 `json:"nonce"`
	SizeBytes         int    `json:"size_bytes"`
	HasAuxPoW         bool   `json:"has_auxpow"`
	Hex               string `json:"hex"`
	HexZeroedHashBlck string `json:"hex_zeroed_hashBlock"`
	Expected          struct {
		ParentHeaderHash      string `json:"parent_header_hash"`
		ParentCoinbaseTxID    string `json:"parent_coinbase_txid"`
		ParentCoinbaseTxBytes int    `json:"parent_coinbase_tx_bytes"`
		CoinbaseBranchLen     int    `json:"coinbase_merkle_branch_len"`
		CoinbaseIndex         int32  `json:"coinbase_merkle_index"`
		ChainBranchLen        int    `json:"chain_merkle_branch_len"`
		ChainIndex            int32  `json:"chain_merkle_index"`
		MagicPresent          bool   `json:"merged_mining_magic_present"`
		MerkleSize            uint32 `json:"mm_merkle_size"`
		MerkleNonce           uint32 `json:"mm_merkle_nonce"`
		ParentVersion         string `json:"parent_version"`
		HashBlockField        string `json:"hashBlock_field"`
		ParentMeetsTarget     *bool  `json:"parent_hash_meets_target"`
		OwnMeetsTarget        *bool  `json:"own_hash_meets_target"`
	} `json:"expected_derived"`
}

// AuxPoWHeaders loads auxpow-mainnet-headers.json.
func AuxPoWHeaders(tb testing.TB) []AuxPoWHeader {
	var f struct {
		Vectors []AuxPoWHeader `json:"vectors"`
	}
	Load(tb, "auxpow-mainnet-headers.json", &f)
	if len(f.Vectors) == 0 {
		tb.Fatal("auxpow-mainnet-headers.json has no vectors")
	}
	return f.Vectors
}

// RegtestRecording is regtest-recording.json: real Namecoin Core regtest
// served by ElectrumX 1.20. Names are left raw for the tests that need
// them.
type RegtestRecording struct {
	Network             string `json:"network"`
	TipHeight           int32  `json:"tip_height"`
	TipHash             string `json:"tip_hash"`
	NameExpirationDepth int32  `json:"name_expiration_depth"`
	Chunks              []struct {
		Start int32  `json:"start"`
		Count int    `json:"count"`
		Hex   string `json:"hex"`
	} `json:"chunks"`
	CPProofs []struct {
		Height   int32 `json:"height"`
		CPHeight int32 `json:"cp_height"`
		Result   struct {
			Header string   `json:"header"`
			Branch []string `json:"branch"`
			Root   string   `json:"root"`
		} `json:"result"`
	} `json:"cp_proofs"`
	Names map[string]json.RawMessage `json:"names"`
}

// LoadRegtestRecording loads regtest-recording.json, skipping when absent.
func LoadRegtestRecording(tb testing.TB) *RegtestRecording {
	tb.Helper()
	var r RegtestRecording
	Load(tb, "regtest-recording.json", &r)
	if len(r.Chunks) == 0 {
		tb.Fatal("regtest-recording.json has no header chunks")
	}
	return &r
}

// SharedPath returns a file under ../shared (e.g. "tor/offline-torrc.example"),
// skipping the test when it is absent.
func SharedPath(tb testing.TB, rel string) string {
	tb.Helper()
	d := Dir()
	if d == "" {
		tb.Skipf("../shared beside the repository not found: skipping test that needs %s", rel)
	}
	p := filepath.Join(filepath.Dir(d), rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("%s is missing: %v", p, err)
	}
	return p
}
