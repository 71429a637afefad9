package spv_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// TestDiskFull: when the header database cannot grow (a full disk), the
// sync says so, not that no server is reachable, no server is blamed, and
// lookups go on with the headers stored. It mounts a 256 KiB tmpfs, so it
// needs root (CI has it).
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	defer syscall.Unmount(dir, 0)

	p := &headers.RegTestParams
	g, _ := chainWithNames(p, 104, 3000, []nameAt{{height: 5, name: "d/early", value: "v", op: chaingen.OpFirstUpdate}})
	b := electrumxtest.FromChain(&chaingen.Generator{Params: p, Blocks: g.Blocks[:21]})
	b.IndexNames()
	srv := startServer(t, b, "1.4.3")
	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(filepath.Join(dir, "headers.db"), p, cp.Anchor(), headers.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pool := electrumx.NewPool(electrumx.Config{})
	defer pool.Close()
	e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
		Servers: []electrumx.Server{srv.Address()}, Router: tor.NewRouter(tor.Direct), Pool: pool,
		QueryServers: 1, Confirmations: 1, CatchUpAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := syncEngine(t, e) // 20 headers fit

	b.AddBlocks(g.Blocks[21:]...) // 3,000 do not
	err = e.Sync(ctx)
	if !errors.Is(err, spv.ErrStoreWrite) || !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no ElectrumX server") {
		t.Fatalf("sync onto a full disk: %v", err)
	}
	if d := e.Demoted(); len(d) != 0 {
		t.Fatalf("a server blamed for the disk: %v", d)
	}
	if tip := store.Tip().Height; tip < 20 || tip >= 3000 {
		t.Fatalf("stored up to %d", tip)
	}
	if err := store.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
	// What is stored still serves.
	if r, err := e.NameShow(ctx, []byte("d/early"), spv.LookupOptions{}); err != nil || string(r.Value) != "v" {
		t.Fatalf("lookup after the disk filled: %+v %v", r, err)
	}
}
