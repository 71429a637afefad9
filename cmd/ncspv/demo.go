package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

type demoCommand struct {
	Blocks  int    `long:"blocks" default:"5000" description:"Number of regtest headers to generate and verify"`
	DataDir string `long:"datadir" description:"Keep the header database here (default: a temporary directory, removed afterwards)"`
	Seed    uint64 `long:"seed" default:"1" description:"Seed of the generated chain"`
}

// Execute runs the demo. Part of the go-flags Commander interface.
func (c *demoCommand) Execute([]string) error {
	if c.Blocks < 30 || c.Blocks > 1_000_000 {
		return fmt.Errorf("--blocks must be between 30 and 1000000, got %d", c.Blocks)
	}
	dir := c.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ncspv-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	p := &headers.RegTestParams
	cp := checkpoints.ForNetwork(p)
	dbPath := filepath.Join(dir, "regtest", "headers.db")
	store, err := headers.OpenStore(dbPath, p, cp.Anchor(), headers.StoreOptions{})
	if err != nil {
		return err
	}
	defer store.Close()
	if tip := store.Tip(); tip.Height != 0 {
		return fmt.Errorf("%s already holds a chain (tip %d); use an empty --datadir", dbPath, tip.Height)
	}

	fmt.Printf("Generating %d regtest headers with AuxPoW (1-2 KB parent coinbases)...\n", c.Blocks)
	g := chaingen.New(p, c.Seed)
	g.Chain(c.Blocks)
	now := time.Unix(int64(g.Tip().Info.Time)+600, 0)

	// Chunks as an ElectrumX server sends them: joined full headers.
	var chunks [][]byte
	var bytes int
	for from := 1; from <= c.Blocks; from += 2016 {
		chunks = append(chunks, g.Joined(from, min(2016, c.Blocks+1-from)))
		bytes += len(chunks[len(chunks)-1])
	}

	fmt.Println("Verifying with Namecoin Core's header rules and storing in 2016-header chunks:")
	start := time.Now()
	for i, raw := range chunks {
		from := 1 + i*2016
		fhs, err := headers.ParseFullHeaders(raw)
		if err != nil {
			return err
		}
		if err := store.AddHeaders(int32(from), fhs, now); err != nil {
			return err
		}
		fmt.Printf("  height %6d  %s\n", store.Tip().Height, store.Tip().Hash)
	}
	el := time.Since(start)
	fmt.Printf("Verified and stored %d headers (%.1f MB) in %v: %.0f headers/s\n",
		c.Blocks, float64(bytes)/1e6, el.Round(time.Millisecond), float64(c.Blocks)/el.Seconds())

	fmt.Println("\nA tampered header (chain merkle index off by one) is refused with its rule:")
	bad := g.Build(chaingen.Spec{ChainBranchLen: 3, ChainIndexDelta: 1})
	fh, _, _ := headers.ParseFullHeader(bad.Raw)
	err = store.AddHeaders(bad.Height, []*headers.FullHeader{fh}, now)
	var re headers.RuleError
	if !errors.As(err, &re) {
		return fmt.Errorf("tampered header was not refused by a rule: %v", err)
	}
	fmt.Printf("  %v: %v\n", re.ErrorCode, err)

	forkAt := int32(c.Blocks - 10)
	weak := g.Fork(forkAt, c.Seed+1)
	weak.Chain(5)
	err = addBlocks(store, weak, forkAt+1, now)
	fmt.Printf("\nA competing branch of 5 blocks from height %d (less work): %v\n", forkAt, err)
	if !errors.Is(err, headers.ErrNotMoreWork) {
		return fmt.Errorf("weaker branch was not refused: %v", err)
	}

	heavy := g.Fork(forkAt, c.Seed+2)
	heavy.Chain(15)
	if err := addBlocks(store, heavy, forkAt+1, now); err != nil {
		return fmt.Errorf("heavier branch: %w", err)
	}
	tip := store.Tip()
	fmt.Printf("A competing branch of 15 blocks (more work) replaces it: tip %d %s\n", tip.Height, tip.Hash)
	if err := store.CheckIntegrity(); err != nil {
		return err
	}
	fmt.Printf("\nStore consistent: headers %d..%d, chain work %v\n", store.Base(), tip.Height, tip.Work)
	if c.DataDir != "" {
		fmt.Printf("Header database kept at %s\n", dbPath)
	}
	return nil
}

func addBlocks(s *headers.Store, g *chaingen.Generator, from int32, now time.Time) error {
	var fhs []*headers.FullHeader
	for _, b := range g.Blocks[from:] {
		fh, _, err := headers.ParseFullHeader(b.Raw)
		if err != nil {
			return err
		}
		fhs = append(fhs, fh)
	}
	return s.AddHeaders(from, fhs, now)
}
