package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
)

// mainnetAvgHeader is mainnet's average AuxPoW header size (bytes), as
// measured in 2019 (BENCHMARKS.md).
const mainnetAvgHeader = 1670

// TestFirstSyncFigure: the first-sync size docs/deploy.md states is the
// one the built-in checkpoint and the chain's average header size give
// for the date it names (a block every 10 minutes), so that a new
// checkpoint or a stale figure cannot go unnoticed.
func TestFirstSyncFigure(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	m := regexp.MustCompile(`checkpoint is block ([0-9,]+) .*? as of (\d{4}-\d{2}-\d{2}) a first sync downloads about ([0-9,]+) AuxPoW headers, (\d+) MB of headers at mainnet's average of ([0-9,]+) bytes each, and twice that, ([0-9.]+) GB`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("docs/deploy.md does not state the first sync's size in the expected words")
	}
	num := func(s string) float64 {
		v, _ := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
		return v
	}
	cp := checkpoints.MainNet
	if int32(num(m[1])) != cp.PeriodEnd {
		t.Errorf("the doc's checkpoint %s is not the built-in %d", m[1], cp.PeriodEnd)
	}
	date, _ := time.Parse("2006-01-02", m[2])
	headers := float64(date.Unix()-int64(cp.PeriodEndTime)) / 600
	checks := []struct {
		what      string
		doc, want float64
	}{
		{"headers", num(m[3]), headers},
		{"MB", num(m[4]), headers * num(m[5]) / 1e6},
		{"GB of hex", num(m[6]), 2 * headers * num(m[5]) / 1e9},
		{"average header size", num(m[5]), mainnetAvgHeader},
	}
	for _, c := range checks {
		if c.doc < 0.99*c.want || c.doc > 1.01*c.want {
			t.Errorf("%s: the doc says %v, the checkpoint and the date give %s", c.what, c.doc, fmt.Sprintf("%.4g", c.want))
		}
	}
}
