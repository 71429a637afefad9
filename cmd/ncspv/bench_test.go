package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestBenchCommand runs "ncspv bench" on a short chain: it must sync the
// whole chain, count one round trip per lookup on protocol 1.4.3 and two
// on 1.4.2, and print every figure BENCHMARKS.md quotes.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := ncspvBinary(t)
	out, err := exec.Command(bin, "bench", "--blocks", "300", "--lookups", "200",
		"--first-answer-headers", "6000", "--first-answer-full-headers", "5000",
		"--first-answer-setup", "0", "--first-answer-oneway", "2", "--first-answer-rate", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Sync: 300 headers \(.* MB raw\) verified and stored in .*: \d+ headers/s`),
		regexp.MustCompile(`CPU time during the sync: ncspv \S+, fake server \S+ \(of \S+ on \d+ CPUs\)`),
		regexp.MustCompile(`sync/raw time ratio \d+\.\d\d`),
		regexp.MustCompile(`protocol 1\.4\.3: 1\.00 round trips per lookup`),
		regexp.MustCompile(`protocol 1\.4\.2: 2\.00 round trips per lookup`),
		regexp.MustCompile(`(?m)^ +1 concurrent: p50 \S+ +p99 \S+ +max \S+ +\(200 lookups, \S+ of CPU each\)`),
		regexp.MustCompile(`(?m)^ +100 concurrent: p50 \S+ +p99 \S+ +max \S+ +\(200 lookups, \S+ of CPU each\)`),
		regexp.MustCompile(`Peak RSS of this process \(sync \+ lookups\): \d+\.\d MiB`),
		regexp.MustCompile(`full sync \(today\): +5000 headers, \d+\.\d MB in \S+; scaled to 6000 headers: \d+ MB in \S+ \(fully verified\)`),
		regexp.MustCompile(`sampled sync: +6000 headers, \d+\.\d MB \(\d+\.\d MiB\) in \S+ \(sampled: [1-9]\d* AuxPoW samples`),
		regexp.MustCompile(`sampled sync from ElectrumX 1\.19\+ only \(split bug: single headers\): 5000 headers, \d+\.\d MB in \S+; scaled to 6000 headers: at most \d+ MB in \S+ \(sampled\)`),
		regexp.MustCompile(`sampled/full: 0\.\d+ of the bytes, \d+\.\d+ of the time`),
		regexp.MustCompile(`Bare round trips of the 1\.4\.3 lookup request, without ncspv .*:\n +1 concurrent: p50 \S+ +p99 \S+ +max \S+\n +100 concurrent: p50 \S+ +p99 \S+ +max \S+\n`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "Peak RSS of this process") > strings.Index(text, "Bare round trips") {
		t.Error("the bare round trips, whose connections are not ncspv's, ran before the peak RSS was read")
	}
}
