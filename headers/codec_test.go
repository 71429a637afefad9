package headers

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/btcsuite/btcd/wire"
	"github.com/ncspv/ncspv/internal/testvectors"
)

// realTxs returns the real mainnet name transactions (hex, txid, segwit).
func realTxs(t testing.TB) [][3]string {
	var f struct {
		Standalone []struct {
			TxID string `json:"txid"`
			Hex  string `json:"hex"`
		} `json:"standalone_txs"`
		History struct {
			Entries []struct {
				TxID string `json:"txid"`
				Hex  string `json:"hex"`
			} `json:"entries"`
		} `json:"dbitcoin_history"`
	}
	testvectors.Load(t, "name-txs-mainnet.json", &f)
	var out [][3]string
	for _, e := range f.Standalone {
		out = append(out, [3]string{e.Hex, e.TxID})
	}
	for _, e := range f.History.Entries {
		out = append(out, [3]string{e.Hex, e.TxID})
	}
	return out
}

// TestRealNameTxs parses real name transactions (plain and segwit) and
// checks the txid, also against btcd's independent codec.
func TestRealNameTxs(t *testing.T) {
	txs := realTxs(t)
	segwit := 0
	for _, v := range txs {
		raw := mustHex(t, v[0])
		tx, n, err := ParseTx(raw)
		if err != nil || n != len(raw) {
			t.Fatalf("tx %s: %v (used %d of %d)", v[1], err, n, len(raw))
		}
		if got := tx.TxID(); got.String() != v[1] {
			t.Fatalf("txid %v, want %s", got, v[1])
		}
		if tx.Version != NamecoinTxVersion {
			t.Fatalf("tx %s version %#x", v[1], tx.Version)
		}
		var m wire.MsgTx
		if err := m.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatalf("btcd: %v", err)
		}
		if m.TxHash() != tx.TxID() || len(m.TxOut) != len(tx.TxOut) || len(m.TxIn) != len(tx.TxIn) {
			t.Fatalf("btcd disagrees on %s", v[1])
		}
		if tx.HasWitness() {
			segwit++
		}
	}
	if segwit == 0 {
		t.Fatal("no segwit transaction among the vectors")
	}
}

// TestHeaderMatchesBtcd: the 80-byte header codec agrees with btcd's.
func TestHeaderMatchesBtcd(t *testing.T) {
	for _, v := range testvectors.AuxPoWHeaders(t) {
		raw := mustHex(t, v.Hex)
		var bh wire.BlockHeader
		if err := bh.Deserialize(bytes.NewReader(raw[:80])); err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(raw)
		if bh.BlockHash() != h.BlockHash() || bh.Bits != h.Bits || bh.Version != h.Version {
			t.Fatalf("btcd header codec disagrees at %d", v.Height)
		}
	}
}

// TestShortReads cuts a real AuxPoW header at every length: each cut is a
// clean ErrMalformed, never a panic or a wrong success.
func TestShortReads(t *testing.T) {
	for _, v := range testvectors.AuxPoWHeaders(t) {
		raw := mustHex(t, v.Hex)
		for n := 0; n < len(raw); n++ {
			_, _, err := ParseFullHeader(raw[:n])
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d: cut at %d of %d: %v", v.Height, n, len(raw), err)
			}
		}
		// A chunk with trailing garbage is refused as a whole.
		if _, err := ParseFullHeaders(append(bytes.Clone(raw), 0x01)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("trailing byte accepted: %v", err)
		}
	}
}

func TestTxEncodingRules(t *testing.T) {
	// version | vin count 1 | prevout | script len 0 | sequence | vout 1 |
	// value | script len 1, OP_TRUE | lock time
	plain := mustHex(t, "01000000"+"01"+
		"0000000000000000000000000000000000000000000000000000000000000000"+"ffffffff"+
		"00"+"ffffffff"+"01"+"0100000000000000"+"0151"+"00000000")
	if _, _, err := ParseTx(plain); err != nil {
		t.Fatalf("plain tx: %v", err)
	}
	cases := []struct {
		name string
		hex  string
	}{
		{"superfluous witness record", "01000000" + "0001" + "01" +
			"0000000000000000000000000000000000000000000000000000000000000000" + "ffffffff" +
			"00" + "ffffffff" + "01" + "0100000000000000" + "0151" + "00" + "00000000"},
		{"unknown flag", "01000000" + "0002" + "01" +
			"0000000000000000000000000000000000000000000000000000000000000000" + "ffffffff" +
			"00" + "ffffffff" + "01" + "0100000000000000" + "0151" + "00000000"},
		{"non-canonical count", "01000000" + "fd0100" +
			"0000000000000000000000000000000000000000000000000000000000000000" + "ffffffff" +
			"00" + "ffffffff" + "01" + "0100000000000000" + "0151" + "00000000"},
		{"count beyond the input", "01000000" + "feffffff7f" + "00000000"},
		{"script beyond the input", "01000000" + "01" +
			"0000000000000000000000000000000000000000000000000000000000000000" + "ffffffff" +
			"ff00000000000000ff" + "00000000"},
	}
	for _, c := range cases {
		if _, _, err := ParseTx(mustHex(t, c.hex)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Core reads an empty input vector with a zero flag as a transaction
	// without inputs or outputs.
	tx, n, err := ParseTx(mustHex(t, "01000000"+"00"+"00"+"00000000"))
	if err != nil || n != 10 || len(tx.TxIn) != 0 || len(tx.TxOut) != 0 {
		t.Fatalf("empty tx: %v %d", err, n)
	}
}

// TestHostileCountsDoNotAllocate: inputs claiming huge vectors fail before
// allocating for them.
func TestHostileCountsDoNotAllocate(t *testing.T) {
	hostile := [][]byte{
		mustHex(t, "01000000"+"ffffffffffffffff7f"+"00000000"),
		mustHex(t, "01000000"+"fe00000001"+"00000000"),
	}
	// An AuxPoW header whose coinbase branch claims 2^32 hashes.
	h := Header{Version: DefaultTestVersion}
	hb := h.Serialize()
	aux := append(hb[:], mustHex(t, "01000000"+"00"+"00"+"00000000")...)
	aux = append(aux, make([]byte, 32)...)
	aux = append(aux, mustHex(t, "feffffffff")...)
	aux = append(aux, make([]byte, 200)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		for _, b := range hostile {
			if _, _, err := ParseTx(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("hostile tx accepted: %v", err)
			}
		}
		if _, _, err := ParseFullHeader(aux); !errors.Is(err, ErrMalformed) {
			t.Fatalf("hostile branch accepted: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("300 hostile parses allocated %d bytes", d)
	}
}

// DefaultTestVersion is an AuxPoW version with chain ID 1.
const DefaultTestVersion = 4 | VersionAuxPoW | VersionChainStart

// TestParseFullHeadersNBounded: a reply with more headers than asked for
// is refused after the ones asked for; 5 MB of zeros (65,536 bare
// headers) costs what 126 headers cost, not 65,536 parsed headers.
func TestParseFullHeadersNBounded(t *testing.T) {
	zeros := make([]byte, 5<<20)
	var err error
	allocs := testing.AllocsPerRun(1, func() { _, err = ParseFullHeadersN(zeros, 126) })
	if !errors.Is(err, ErrTooManyHeaders) {
		t.Fatalf("5 MB of zeros for 126 headers: %v", err)
	}
	if allocs > 300 {
		t.Fatalf("%v allocations to refuse it, want about 126", allocs)
	}
	hdrs, err := ParseFullHeadersN(zeros[:126*HeaderSize], 126)
	if err != nil || len(hdrs) != 126 {
		t.Fatalf("exactly 126: %d %v", len(hdrs), err)
	}
	if hdrs, err = ParseFullHeadersN(zeros[:3*HeaderSize], 126); err != nil || len(hdrs) != 3 {
		t.Fatalf("fewer than asked for: %d %v", len(hdrs), err)
	}
}
