package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ncspv/ncspv/internal/bench"
)

// TestHostileServersMemory builds ncspv (without the race detector,
// whose runtime would dwarf what is measured) and runs bench-hostile: in
// every case, each in a process of its own, ncspv's peak RSS stays under
// 20 MiB, the hostile server is caught or left behind, and the honest
// server's chain is synced and answers every lookup.
func TestHostileServersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ncspv and runs bench-hostile")
	}
	bin := ncspvBinary(t)
	out, err := exec.Command(bin, "bench-hostile", "--blocks", "300", "--handshake-timeout", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("bench-hostile: %v\n%s", err, out)
	}
	rss := regexp.MustCompile(`\| ([0-9.]+) MiB \|`)
	rows := 0
	for _, line := range strings.Split(string(out), "\n") {
		m := rss.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		if mib, _ := strconv.ParseFloat(m[1], 64); mib >= 20 {
			t.Errorf("peak RSS %s MiB: %s", m[1], line)
		}
		if !strings.Contains(line, "demoted") || !strings.Contains(line, "tip 300 of 300, 20/20 lookups answered") {
			t.Errorf("outcome: %s", line)
		}
	}
	if rows != bench.HostileCaseCount() {
		t.Fatalf("%d cases measured, want %d:\n%s", rows, bench.HostileCaseCount(), out)
	}
	t.Logf("\n%s", out)
}
