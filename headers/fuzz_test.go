package headers

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncspv/ncspv/internal/testvectors"
)

// addVectorSeeds seeds a fuzz corpus from the real vectors when present.
func addVectorSeeds(f *testing.F, headersToo, txs bool) {
	d := testvectors.Dir()
	if d == "" {
		return
	}
	if headersToo {
		if _, err := os.Stat(filepath.Join(d, "auxpow-mainnet-headers.json")); err == nil {
			for _, v := range testvectors.AuxPoWHeaders(f) {
				b, _ := hex.DecodeString(v.Hex)
				f.Add(b)
			}
		}
	}
	if txs {
		if _, err := os.Stat(filepath.Join(d, "name-txs-mainnet.json")); err == nil {
			for _, v := range realTxs(f) {
				b, _ := hex.DecodeString(v[0])
				f.Add(b)
			}
		}
	}
}

// FuzzParseFullHeader: hostile header bytes never panic; whatever parses
// re-serializes to exactly the bytes consumed and can be checked.
func FuzzParseFullHeader(f *testing.F) {
	addVectorSeeds(f, true, false)
	f.Add(make([]byte, 80))
	f.Add(append([]byte{0x04, 0x01, 0x01, 0x00}, make([]byte, 300)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		fh, n, err := ParseFullHeader(b)
		if err != nil {
			return
		}
		if got := fh.Serialize(); !bytes.Equal(got, b[:n]) {
			t.Fatalf("round trip differs")
		}
		for _, p := range []*Params{&MainNetParams, &TestNetParams, &RegTestParams} {
			_ = CheckProofOfWork(fh, fh.BlockHash(), p)
		}
		if _, err := ParseFullHeaders(b[:n]); err != nil {
			t.Fatalf("one header parses alone but not as a chunk: %v", err)
		}
	})
}

// FuzzParseTx: hostile transaction bytes never panic; a parsed
// transaction's raw bytes are the consumed input and its txid does not
// depend on witness data.
func FuzzParseTx(f *testing.F) {
	addVectorSeeds(f, false, true)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, n, err := ParseTx(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Raw, b[:n]) {
			t.Fatal("Raw is not the consumed input")
		}
		id := tx.TxID()
		if !tx.HasWitness() {
			return
		}
		// Strip the witness: the txid must not change.
		stripped := append([]byte{}, tx.Raw[:4]...)
		stripped = append(stripped, tx.Raw[tx.witFlagEnd:tx.witStart]...)
		stripped = append(stripped, tx.Raw[len(tx.Raw)-4:]...)
		plain, _, err := ParseTx(stripped)
		if err != nil {
			// A witness tx without inputs has no plain form.
			if len(tx.TxIn) == 0 {
				return
			}
			t.Fatalf("stripped tx does not parse: %v", err)
		}
		if plain.TxID() != id {
			t.Fatal("txid depends on witness data")
		}
	})
}
