package bench

import "testing"

// TestParseRange: --coinbase takes MIN-MAX sizes chaingen can build.
func TestParseRange(t *testing.T) {
	if lo, hi, err := parseRange("800-1500"); err != nil || lo != 800 || hi != 1500 {
		t.Fatalf("800-1500: %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"", "800", "1500-800", "800-820", "50-1000", "a-b", "800-", "1000-200000"} {
		if _, _, err := parseRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
