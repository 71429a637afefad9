// Package demo is ncspv demo: an offline run of the whole path on a
// generated regtest chain (verify, store, reject a tampered header, reorg,
// then a verified name_show from two fake ElectrumX servers on loopback).
// Its flags stay in cmd/ncspv.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// Options are ncspv demo's: see its flags in cmd/ncspv.
type Options struct {
	Blocks  int    // regtest headers to generate and verify
	DataDir string // keep the header database here ("": a temporary directory)
	Seed    uint64 // seed of the generated chain
}

// Run runs the demo, printing what it does on standard output.
func Run(c Options) error {
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
	return demoLookup(filepath.Join(dir, "regtest-names", "headers.db"), c.Seed)
}

// demoLookup serves a small chain with names from two fake ElectrumX
// servers on loopback, one honest and one that withholds the newest
// update, and shows a verified name_show.
func demoLookup(dbPath string, seed uint64) error {
	fmt.Println("\nName lookup: two fake ElectrumX servers on loopback, one withholding the newest update.")
	p := &headers.RegTestParams
	g := chaingen.New(p, seed+10)
	value1 := []byte(`{"ip":"127.0.0.1"}`)
	value2 := []byte(`{"ip":"127.0.0.1","tor":"exampleaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion"}`)
	for h := 1; h <= 60; h++ {
		var txs [][]byte
		switch h {
		case 40:
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte("d/example"), value1, [20]byte{1}, 0, 40))
		case 50:
			txs = append(txs, chaingen.NameTx(chaingen.OpUpdate, []byte("d/example"), value2, [20]byte{2}, 0, 50))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	honestB, liarB := electrumxtest.FromChain(g), electrumxtest.FromChain(g)
	honestB.IndexNames()
	liarB.IndexNames()
	sh := electrumxtest.ScriptHashOfName([]byte("d/example"))
	liarB.SetHistory(sh, liarB.History(sh)[:1])
	honest, err := electrumxtest.NewServer(honestB, electrumxtest.Options{Pad: true})
	if err != nil {
		return err
	}
	defer honest.Close()
	liar, err := electrumxtest.NewServer(liarB, electrumxtest.Options{Pad: true})
	if err != nil {
		return err
	}
	defer liar.Close()

	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(dbPath, p, cp.Anchor(), headers.StoreOptions{})
	if err != nil {
		return err
	}
	defer store.Close()
	pool := electrumx.NewPool(electrumx.Config{})
	defer pool.Close()
	e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
		Servers: []electrumx.Server{honest.Address(), liar.Address()},
		Router:  tor.NewRouter(tor.Direct), Pool: pool, Confirmations: 3, QueryServers: 2})
	if err != nil {
		return err
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := e.Sync(ctx); err != nil {
		return err
	}
	fmt.Printf("  synced %d headers in %v\n", store.Tip().Height, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	r, err := e.NameShow(ctx, []byte("d/example"), spv.LookupOptions{StreamID: "demo-tab"})
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(r.JSON(spv.EncodingASCII, spv.EncodingASCII), "  ", "  ")
	fmt.Printf("  name_show d/example (verified against our headers, %v):\n  %s\n", time.Since(t0).Round(time.Microsecond), out)
	if string(r.Value) != string(value2) {
		return errors.New("the withheld newest update did not win")
	}
	_, err = e.NameShow(ctx, []byte("d/nonexistent"), spv.LookupOptions{StreamID: "demo-tab"})
	fmt.Printf("  name_show d/nonexistent: %v (RPC code -4, NXDOMAIN for ncdns)\n", err)
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
