package electrumx

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TestHashUnmarshal checks the quoted-string fast path against
// chainhash's display-order parsing, and that everything else a server
// might send instead of a hash is refused.
func TestHashUnmarshal(t *testing.T) {
	const display = "00000000000030ce54a9b0e59fa3d7d622f6812b891ab84ade3eac1965efb0fa"
	want, err := chainhash.NewHashFromStr(display)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`"` + display + `"`, `"` + strings.ToUpper(display) + `"`, `"\u0030` + display[1:] + `"`} {
		var h Hash
		if err := json.Unmarshal([]byte(in), &h); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if chainhash.Hash(h) != *want {
			t.Errorf("%s decoded to %s, want %s", in, chainhash.Hash(h), want)
		}
	}
	for _, in := range []string{
		`"` + display[:62] + `"`,            // short: NewHashFromStr would zero-pad it
		`"` + display + `00"`,               // long
		`"` + display[:63] + `g"`,           // not hex
		`"` + display[:63] + ` "`,           // not hex
		`12`, `null`, `["` + display + `"]`, // not a string
	} {
		var h Hash
		if err := h.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s accepted as %s", in, chainhash.Hash(h))
		}
	}
}

// FuzzHashUnmarshal: the fast path and json.Unmarshal of a string agree.
func FuzzHashUnmarshal(f *testing.F) {
	f.Add([]byte(`"00000000000030ce54a9b0e59fa3d7d622f6812b891ab84ade3eac1965efb0fa"`))
	f.Add([]byte(`"0x000000000030ce54a9b0e59fa3d7d622f6812b891ab84ade3eac1965efb0fa"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hash
		err := h.UnmarshalJSON(b)
		var s string
		if json.Unmarshal(b, &s) != nil || len(s) != 64 {
			if err == nil {
				t.Fatalf("%q accepted", b)
			}
			return
		}
		ref, rerr := chainhash.NewHashFromStr(s)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%q: got err %v, chainhash %v", b, err, rerr)
		}
		if err == nil && chainhash.Hash(h) != *ref {
			t.Fatalf("%q: %s != %s", b, chainhash.Hash(h), ref)
		}
	})
}
