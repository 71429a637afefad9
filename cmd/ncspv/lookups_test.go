package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestBenchLookupsCommand runs "ncspv bench-lookups" on loopback with
// one lookup per case: every case of every server kind gets a row with
// one round trip per lookup (the renewed name's included: its proof is
// asked with cp_height), and the flood answers every lookup with as many
// stream IDs.
func TestBenchLookupsCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ncspv and runs bench-lookups")
	}
	out, err := exec.Command(ncspvBinary(t), "bench-lookups", "--loopback-only", "--sequential", "1", "--flood", "40").CombinedOutput()
	if err != nil {
		t.Fatalf("bench-lookups: %v\n%s", err, out)
	}
	text := string(out)
	row := regexp.MustCompile(`(?m)^\| loopback \| (1\.20|1\.18|1\.20 \+ silent) \| ([^|]+) \| (\d+) \| [0-9.]+ ms \| [0-9.]+ ms \| \d+ \| ([0-9.]+) \|$`)
	rows := row.FindAllStringSubmatch(text, -1)
	if len(rows) != 3*7 {
		t.Fatalf("%d rows, want 7 cases for each of 3 server kinds:\n%s", len(rows), text)
	}
	for _, r := range rows {
		if r[4] != "1.00" {
			t.Errorf("%s %s: %s round trips per lookup, want 1.00", r[1], strings.TrimSpace(r[2]), r[4])
		}
	}
	if !regexp.MustCompile(`40 lookups with 40 stream IDs, 20 at a time, on loopback: .* 0 failed`).MatchString(text) {
		t.Errorf("flood line missing or with failures:\n%s", text)
	}
}
