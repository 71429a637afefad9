package spv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/testvectors"
)

func TestNameScriptHashVectors(t *testing.T) {
	cases := map[string]string{
		// ElectrumX's docs example and the regtest observations.
		"d/bitcoin":  "bdd490728e7f1cbea1836919db5e932cce651a82f5a13aa18a5267c979c95d3c",
		"d/testsite": "02f1b0c69c49692483c10fa5e37aa82880a6da8d57fbfa18a16e5f105917d414",
	}
	for name, want := range cases {
		if got := NameScriptHash([]byte(name)); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if got := hex.EncodeToString(NameIndexScript([]byte("d/testsite"))); got != "530a642f7465737473697465006d756a" {
		t.Errorf("index script %s", got)
	}
	// One-byte names keep a length prefix (Electrum-NMC's minimal push
	// would use OP_1..OP_16 and miss ElectrumX's index).
	if s := NameIndexScript([]byte{0x05}); !bytes.Equal(s[:3], []byte{0x53, 0x01, 0x05}) {
		t.Errorf("one-byte name script %x", s)
	}
	if s := NameIndexScript(bytes.Repeat([]byte{'a'}, 255)); !bytes.Equal(s[:3], []byte{0x53, 0x4c, 0xff}) {
		t.Errorf("255-byte name script %x", s[:3])
	}
}

// TestRealNameTransactions parses the name outputs of real mainnet
// transactions and checks op, name, value and the index script hash.
func TestRealNameTransactions(t *testing.T) {
	var f struct {
		Standalone []struct {
			TxID    string `json:"txid"`
			Hex     string `json:"hex"`
			Outputs []struct {
				Vout   int    `json:"vout"`
				Script string `json:"script_hex"`
				Op     struct {
					OpCode int    `json:"op_code"`
					Name   string `json:"name_hex"`
					Value  string `json:"value_hex"`
				} `json:"name_op"`
				ScriptHash string `json:"name_scripthash"`
			} `json:"name_outputs"`
		} `json:"standalone_txs"`
		History struct {
			Name       string `json:"name"`
			ScriptHash string `json:"scripthash"`
			Entries    []struct {
				Hex      string `json:"hex"`
				TxMerkle struct {
					Merkle []string `json:"merkle"`
					Pos    int      `json:"pos"`
				} `json:"tx_merkle"`
				Root string `json:"merkle_root_derived"`
			} `json:"entries"`
		} `json:"dbitcoin_history"`
	}
	testvectors.Load(t, "name-txs-mainnet.json", &f)
	for _, tx := range f.Standalone {
		raw, _ := hex.DecodeString(tx.Hex)
		parsed, _, err := headers.ParseTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		names := 0
		for i, out := range parsed.TxOut {
			if _, ok := ParseNameScript(out.PkScript); ok {
				names++
				_ = i
			}
		}
		if names != 1 {
			t.Fatalf("%s: %d name outputs", tx.TxID, names)
		}
		for _, o := range tx.Outputs {
			script, _ := hex.DecodeString(o.Script)
			op, ok := ParseNameScript(script)
			if !ok || int(op.Op) != 0x50+o.Op.OpCode {
				t.Fatalf("%s: op %x ok=%v", tx.TxID, op.Op, ok)
			}
			if !op.IsAnyUpdate() {
				continue
			}
			if hex.EncodeToString(op.Name) != o.Op.Name || hex.EncodeToString(op.Value) != o.Op.Value {
				t.Fatalf("%s: name/value mismatch", tx.TxID)
			}
			if NameScriptHash(op.Name) != o.ScriptHash {
				t.Fatalf("%s: script hash %s, want %s", tx.TxID, NameScriptHash(op.Name), o.ScriptHash)
			}
			if !bytes.Equal(parsed.TxOut[o.Vout].PkScript, script) {
				t.Fatalf("%s: output %d differs", tx.TxID, o.Vout)
			}
		}
	}
	if NameScriptHash([]byte(f.History.Name)) != f.History.ScriptHash {
		t.Fatal("d/bitcoin script hash")
	}
	// The d/bitcoin history: real segwit name updates with their merkle
	// proofs against the derived roots.
	for _, en := range f.History.Entries {
		raw, _ := hex.DecodeString(en.Hex)
		tx, _, err := headers.ParseTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		var branch []chainhash.Hash
		for _, h := range en.TxMerkle.Merkle {
			bh, _ := chainhash.NewHashFromStr(h)
			branch = append(branch, *bh)
		}
		root, _ := chainhash.NewHashFromStr(en.Root)
		if err := checkMerkleProof(tx.TxID(), branch, en.TxMerkle.Pos, *root); err != nil {
			t.Fatalf("real proof: %v", err)
		}
		if err := checkMerkleProof(tx.TxID(), branch, en.TxMerkle.Pos^1, *root); err == nil {
			t.Fatal("proof accepted at the wrong position")
		}
	}
}

func TestParseNameScript(t *testing.T) {
	p2pkh, _ := hex.DecodeString("76a914ce26e759dbb966466446aab6e48cf39a23badd7588ac")
	cases := []struct {
		name   string
		script string
		ok     bool
		op     byte
	}{
		{"canonical update", "5301610162" + "6d75", true, OpNameUpdate},
		{"canonical firstupdate", "530161016201" /*bad args*/ + "6d75", false, 0},
		{"firstupdate", "520161" + "0100" + "0162" + "6d6d", true, OpNameFirstUpdate},
		{"name_new", "5101aa6d", true, OpNameNew},
		{"update with OP_0 value", "53016100" + "6d75", true, OpNameUpdate},
		{"non-canonical drops (Core accepts)", "5301610162" + "757575", true, OpNameUpdate},
		{"OP_NOP as separator", "5301610162" + "61", true, OpNameUpdate},
		{"OP_1 as an argument", "5301615175", false, 0},
		{"truncated push", "5305616263", false, 0},
		{"no drop", "5301610162", false, 0},
		{"not a name op", "76a914", false, 0},
		{"empty", "", false, 0},
		{"pushdata2 value", "5301614d0300616263" + "6d75", true, OpNameUpdate},
	}
	for _, c := range cases {
		s, _ := hex.DecodeString(c.script)
		s = append(s, p2pkh...)
		op, ok := ParseNameScript(s)
		if ok != c.ok || (ok && op.Op != c.op) {
			t.Errorf("%s: ok=%v op=%x", c.name, ok, op.Op)
		}
		if ok && !bytes.Equal(op.Address, p2pkh) {
			t.Errorf("%s: address %x", c.name, op.Address)
		}
	}
}

func TestEncode(t *testing.T) {
	cases := []struct {
		data []byte
		enc  Encoding
		want string
		ok   bool
	}{
		{[]byte("d/x"), EncodingASCII, "d/x", true},
		{[]byte{0x7f}, EncodingASCII, "\x7f", true},
		{[]byte{0x1f}, EncodingASCII, "", false},
		{[]byte("é"), EncodingASCII, "", false},
		{[]byte("é"), EncodingUTF8, "é", true},
		{[]byte{0xff}, EncodingUTF8, "", false},
		{[]byte{0xed, 0xa0, 0x80}, EncodingUTF8, "", false}, // surrogate
		{[]byte{0x00, 0xab}, EncodingHex, "00ab", true},
	}
	for _, c := range cases {
		got, err := Encode(c.data, c.enc)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Encode(%x, %s) = %q, %v", c.data, c.enc, got, err)
		}
	}
	if b, err := Decode("00AB", EncodingHex); err != nil || !bytes.Equal(b, []byte{0, 0xab}) {
		t.Errorf("Decode hex: %x %v", b, err)
	}
	if _, err := Decode("zz", EncodingHex); err == nil {
		t.Error("bad hex accepted")
	}
	if _, err := ParseEncoding("base64"); err == nil {
		t.Error("unknown encoding accepted")
	}
}

func TestScriptAddress(t *testing.T) {
	bip173, _ := hex.DecodeString("0014751e76e8199196d454941c45d1b3a323f1433bd6")
	if got := ScriptAddress(bip173, AddressParams{Bech32HRP: "bc"}); got != "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" {
		t.Errorf("BIP173 P2WPKH: %s", got)
	}
	// BIP350 v1 vector.
	tr, _ := hex.DecodeString("5120" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	if got := ScriptAddress(tr, AddressParams{Bech32HRP: "bc"}); got != "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0" {
		t.Errorf("BIP350 P2TR: %s", got)
	}
	// Namecoin mainnet P2PKH (the Electrum-NMC docs sample's address is a
	// mainnet N... address).
	p2pkh, _ := hex.DecodeString("76a914" + "0000000000000000000000000000000000000000" + "88ac")
	if got := ScriptAddress(p2pkh, MainNetAddresses); got[0] != 'M' && got[0] != 'N' {
		t.Errorf("mainnet P2PKH %s", got)
	}
	for _, s := range []string{"6a0100", "21" + "02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" + "ac", "0003000000"} {
		b, _ := hex.DecodeString(s)
		if got := ScriptAddress(b, MainNetAddresses); got != Nonstandard {
			t.Errorf("%s: %s, want %s", s, got, Nonstandard)
		}
	}
}

// TestNameAddressAsCore: the address of a name output as Core finds it.
// CNameScript steps back one byte after the operation that follows the
// DROPs, so an ordinary part that starts with a push starts at the push's
// last byte; and Solver strips a second name prefix.
func TestNameAddressAsCore(t *testing.T) {
	const pkh = "ce26e759dbb966466446aab6e48cf39a23badd75"
	p2pkh := ScriptAddress(mustHex(t, "76a914"+pkh+"88ac"), RegTestAddresses)
	for _, c := range []struct {
		name, script, want string
	}{
		{"canonical", "5301610162" + "6d75" + "76a914" + pkh + "88ac", p2pkh},
		{"a one-byte push before the address", "5301610162" + "6d75" + "0176" + "a914" + pkh + "88ac", p2pkh},
		{"a two-byte push ending in OP_DUP", "5301610162" + "6d75" + "02ff76" + "a914" + pkh + "88ac", p2pkh},
		{"a second name prefix", "5301610162" + "6d75" + "5301630164" + "6d75" + "76a914" + pkh + "88ac", p2pkh},
		{"nothing after the drops", "5301610162" + "6d75", Nonstandard},
		{"a push cut short", "5301610162" + "6d75" + "4c", Nonstandard},
	} {
		op, ok := ParseNameScript(mustHex(t, c.script))
		if !ok {
			t.Fatalf("%s: not a name script", c.name)
		}
		if got := ScriptAddress(op.Address, RegTestAddresses); got != c.want {
			t.Errorf("%s: address %s, Core gives %s", c.name, got, c.want)
		}
	}
	// Where Core's read position ends, byte for byte.
	for _, c := range []struct{ script, address string }{
		{"5301610162" + "6d75", "75"},
		{"5301610162" + "6d" + "0176a9", "76a9"},
		{"5301610162" + "6d" + "4c", "4c"},
		{"5301610162" + "6d" + "4d05", "4d05"},
		{"5301610162" + "6d" + "4c0501", "05" + "01"},
	} {
		op, _ := ParseNameScript(mustHex(t, c.script))
		if hex.EncodeToString(op.Address) != c.address {
			t.Errorf("%s: address part %x, Core's is %s", c.script, op.Address, c.address)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInnerNodeThatParsesAsTx: a merkle step whose 64 bytes parse as a
// transaction is refused (the forged SPV proof of Sergio Lerner's attack).
func TestInnerNodeThatParsesAsTx(t *testing.T) {
	// A 64-byte transaction: version, one input whose scriptSig is 13
	// bytes, no outputs, lock time (4+1+36+1+13+4+1+4 = 64).
	tx64, _ := hex.DecodeString("01000000" + "01" +
		"0000000000000000000000000000000000000000000000000000000000000000" + "00000000" +
		"0d" + "00112233445566778899aabbcc" + "ffffffff" + "00" + "00000000")
	if _, n, err := headers.ParseTx(tx64); err != nil || n != 64 || len(tx64) != 64 {
		t.Fatalf("the 64-byte transaction does not parse: %v %d", err, n)
	}
	var left, right chainhash.Hash
	copy(left[:], tx64[:32])
	copy(right[:], tx64[32:])
	root := chainhash.DoubleHashH(tx64)
	if err := checkMerkleProof(left, []chainhash.Hash{right}, 0, root); err == nil {
		t.Fatal("64-byte inner node that parses as a transaction accepted")
	}
}

// TestUTF8AsCore: the utf8 encoding accepts exactly what Core's
// IsValidUtf8String accepts, which reaches past U+10FFFF.
func TestUTF8AsCore(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want bool
	}{
		{"", true},
		{"68c3a96c6c6f", true},          // héllo
		{"f09f9880", true},              // U+1F600
		{"f48fbfbf", true},              // U+10FFFF
		{"f4908080", true},              // U+110000: Core yes, RFC 3629 no
		{"f7bfbfbf", true},              // U+1FFFFF
		{"f8888080", false},             // five-byte lead
		{"ff", false},                   // never a lead
		{"80", false},                   // stray continuation
		{"c080", false},                 // overlong NUL
		{"e08080", false},               // overlong
		{"f0808080", false},             // overlong
		{"eda080", false},               // lone high surrogate
		{"edb080", false},               // lone low surrogate
		{"eda080edb080", false},         // a surrogate pair in UTF-8
		{"e282", false},                 // cut sequence
		{"e228a1", false},               // continuation missing
		{"c3a9f4908080c3a9", true},      // mixed
		{"41f7bfbfbf42ed9fbf", true},    // U+D7FF is not a surrogate
		{"41f7bfbfbf42ee8080", true},    // U+E000 neither
		{"41f7bfbfbf42edbfbf00", false}, // U+DFFF is
	} {
		b, _ := hex.DecodeString(c.hex)
		_, err := Encode(b, EncodingUTF8)
		if got := err == nil; got != c.want {
			t.Errorf("%s: valid %v, Core says %v", c.hex, got, c.want)
		}
		if c.want {
			if _, err := Decode(string(b), EncodingUTF8); err != nil {
				t.Errorf("%s: Decode refuses what Core accepts: %v", c.hex, err)
			}
		}
	}
}

// TestJSONTextAsCore: a value Core accepts as utf8 reaches the RPC's JSON
// byte for byte (encoding/json would write U+FFFD for U+110000's bytes),
// and what must be escaped is.
func TestJSONTextAsCore(t *testing.T) {
	r := &NameResult{Name: []byte("d/x"), Value: []byte("a\xf4\x90\x80\x80\"\\\n\x01\x7fé")}
	b, err := json.Marshal(r.JSON(EncodingUTF8, EncodingUTF8))
	if err != nil {
		t.Fatal(err)
	}
	want := `"value":"a` + "\xf4\x90\x80\x80" + `\"\\\n\u0001\u007fé"`
	if !strings.Contains(string(b), want) {
		t.Fatalf("got %s\nwant it to contain %s", b, want)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
}

// TestPhantomMerklePosition: in a block of six transactions the third
// level pairs the last node with itself, so the fifth transaction (a stale
// update) also folds to the root as the seventh, past the newer update in
// the sixth, and would win the newest-update tie-break. Refused; its real
// position still verifies.
func TestPhantomMerklePosition(t *testing.T) {
	ids := make([]chainhash.Hash, 6)
	for i := range ids {
		ids[i] = chainhash.DoubleHashH([]byte{byte(i)})
	}
	root := headers.MerkleRoot(ids)
	branch := headers.MerkleBranch(ids, 4)
	if err := checkMerkleProof(ids[4], branch, 4, root); err != nil {
		t.Fatalf("real position: %v", err)
	}
	if headers.MerkleBranchRoot(ids[4], branch, 6) != root {
		t.Fatal("test set-up: position 6 should fold to the root")
	}
	if err := checkMerkleProof(ids[4], branch, 6, root); err == nil {
		t.Fatal("phantom position 6 of a block of 6 accepted")
	}
	// The last transaction of an odd level is paired with itself at its
	// real (even) position: still valid.
	odd := ids[:5]
	if err := checkMerkleProof(odd[4], headers.MerkleBranch(odd, 4), 4, headers.MerkleRoot(odd)); err != nil {
		t.Fatalf("last of an odd count at its real position: %v", err)
	}
	if err := checkMerkleProof(odd[4], headers.MerkleBranch(odd, 4), 5, headers.MerkleRoot(odd)); err == nil {
		t.Fatal("phantom position 5 of a block of 5 accepted")
	}
}

// FuzzParseNameScript: arbitrary scripts never panic, and a parsed op's
// fields point inside the script.
func FuzzParseNameScript(f *testing.F) {
	for _, s := range []string{"5301610162" + "6d75", "520161" + "0100" + "0162" + "6d6d", "5101aa6d", "534e"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		op, ok := ParseNameScript(s)
		if !ok {
			return
		}
		if len(op.Name) > len(s) || len(op.Value) > len(s) || len(op.Address) > len(s) {
			t.Fatal("field longer than the script")
		}
		_ = NameScriptHash(op.Name)
		_ = ScriptAddress(op.Address, MainNetAddresses)
	})
}
