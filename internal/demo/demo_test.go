package demo

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDemo runs the README's demo end to end on a small chain and keeps
// its database, which must then be refused as non-empty.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	o := Options{Blocks: 2100, DataDir: dir, Seed: 3}
	if err := Run(o); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "regtest", "headers.db")); err != nil {
		t.Fatalf("database not kept: %v", err)
	}
	if err := Run(o); err == nil {
		t.Fatal("demo reused a non-empty database")
	}
	if err := Run(Options{Blocks: 5}); err == nil {
		t.Fatal("--blocks 5 accepted")
	}
}
