package electrumxtest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPadLikeElectrumX: padded lines (with newline) are powers of two of
// at least 1 KiB and still valid JSON.
func TestPadLikeElectrumX(t *testing.T) {
	for _, n := range []int{2, 100, 1022, 1023, 1024, 5000} {
		msg := `{"x":"` + strings.Repeat("a", n) + `"}`
		p := pad([]byte(msg))
		size := len(p) + 1
		if size < 1024 || size&(size-1) != 0 {
			t.Fatalf("len %d: padded line is %d bytes", len(msg), size)
		}
		if !json.Valid(p) {
			t.Fatalf("padded JSON invalid")
		}
	}
}

func TestVersionCompare(t *testing.T) {
	if vcmp("1.4.3", "1.4.10") >= 0 || vcmp("1.4", "1.4.0") != 0 || vcmp("1.10", "1.4.3") <= 0 {
		t.Fatal("vcmp ordering")
	}
}
