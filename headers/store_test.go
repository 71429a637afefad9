package headers_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	bolt "go.etcd.io/bbolt"
)

func fullHeaders(t testing.TB, blocks []*chaingen.Block) []*headers.FullHeader {
	t.Helper()
	out := make([]*headers.FullHeader, len(blocks))
	for i, b := range blocks {
		fh, _, err := headers.ParseFullHeader(b.Raw)
		if err != nil {
			t.Fatalf("parse generated block %d: %v", b.Height, err)
		}
		out[i] = fh
	}
	return out
}

// openTestStore opens a regtest store in a temporary directory and checks
// its integrity when the test ends (bbolt btesting style).
func openTestStore(t *testing.T, opts headers.StoreOptions) (*headers.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "headers.db")
	s, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(), opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.CheckIntegrity(); err != nil {
			t.Errorf("integrity after test: %v", err)
		}
		s.Close()
	})
	return s, path
}

func addBlocks(t *testing.T, s *headers.Store, g *chaingen.Generator, blocks []*chaingen.Block) error {
	t.Helper()
	return s.AddHeaders(blocks[0].Height, fullHeaders(t, blocks), testNow(g))
}

func TestStoreExtendAndQuery(t *testing.T) {
	s, _ := openTestStore(t, headers.StoreOptions{})
	g := chaingen.New(&headers.RegTestParams, 11)
	blocks := g.Chain(250)
	for i := 0; i < len(blocks); i += 100 {
		if err := addBlocks(t, s, g, blocks[i:min(i+100, len(blocks))]); err != nil {
			t.Fatalf("add at %d: %v", i, err)
		}
	}
	tip := s.Tip()
	if tip.Height != 250 || tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d %v, want 250 %v", tip.Height, tip.Hash, g.Tip().Hash)
	}
	want := headers.CalcWork(0x207fffff)
	want.Mul(want, big.NewInt(251))
	if tip.Work.Cmp(want) != 0 {
		t.Fatalf("tip work %v, want %v", tip.Work, want)
	}
	h, err := s.HeaderAt(123)
	if err != nil || h != blocks[122].Header.Header {
		t.Fatalf("HeaderAt(123): %v", err)
	}
	if b, ok := s.BlockAt(100); !ok || b.Hash != blocks[99].Hash {
		t.Fatalf("BlockAt(100): %v %v", b.Hash, ok)
	}
	if _, err := s.HeaderAt(251); !errors.Is(err, headers.ErrHeightNotFound) {
		t.Fatalf("HeaderAt beyond tip: %v", err)
	}
	// Sending known headers again is a no-op.
	if err := addBlocks(t, s, g, blocks[200:]); err != nil {
		t.Fatalf("re-add known headers: %v", err)
	}
	// A gap is refused.
	more := g.Chain(5)
	if err := addBlocks(t, s, g, more[2:]); !errors.Is(err, headers.ErrDoesNotConnect) {
		t.Fatalf("gap: %v", err)
	}
}

func TestStoreRejectsInvalidWithoutChange(t *testing.T) {
	s, _ := openTestStore(t, headers.StoreOptions{})
	g := chaingen.New(&headers.RegTestParams, 12)
	if err := addBlocks(t, s, g, g.Chain(30)); err != nil {
		t.Fatal(err)
	}
	before := s.Tip()
	good := g.Chain(5)
	bad := g.Build(chaingen.Spec{WeakPoW: true})
	err := addBlocks(t, s, g, append(good, bad))
	if !errors.Is(err, headers.ErrHighHash) {
		t.Fatalf("want ErrHighHash, got %v", err)
	}
	if s.Tip().Hash != before.Hash {
		t.Fatal("a chunk with an invalid header changed the chain")
	}
}

// TestStoreAddPrechecked: prechecked headers are stored as AddHeaders
// stores them, and a bad one is refused with the same rule and no change.
func TestStoreAddPrechecked(t *testing.T) {
	s, _ := openTestStore(t, headers.StoreOptions{})
	g := chaingen.New(&headers.RegTestParams, 15)
	blocks := g.Chain(30)
	pcs := headers.Precheck(fullHeaders(t, blocks), &headers.RegTestParams)
	if err := s.AddPrechecked(1, pcs, testNow(g)); err != nil {
		t.Fatal(err)
	}
	if tip := s.Tip(); tip.Height != 30 || tip.Hash != g.Tip().Hash {
		t.Fatalf("tip %d %s", tip.Height, tip.Hash)
	}
	bad := append(g.Chain(5), g.Build(chaingen.Spec{WeakPoW: true}))
	pcs = headers.Precheck(fullHeaders(t, bad), &headers.RegTestParams)
	if err := s.AddPrechecked(31, pcs, testNow(g)); !errors.Is(err, headers.ErrHighHash) {
		t.Fatalf("want ErrHighHash, got %v", err)
	}
	if s.Tip().Height != 30 {
		t.Fatal("a chunk with an invalid header changed the chain")
	}
	if err := s.AddPrechecked(40, pcs, testNow(g)); !errors.Is(err, headers.ErrDoesNotConnect) {
		t.Fatalf("headers above a gap: want ErrDoesNotConnect, got %v", err)
	}
}

func TestStoreReorg(t *testing.T) {
	s, _ := openTestStore(t, headers.StoreOptions{})
	g := chaingen.New(&headers.RegTestParams, 13)
	main := g.Chain(40)
	if err := addBlocks(t, s, g, main); err != nil {
		t.Fatal(err)
	}

	// Equal work (same length, same bits): refused, chain kept.
	equal := g.Fork(30, 1).Chain(10)
	if err := addBlocks(t, s, g, equal); !errors.Is(err, headers.ErrNotMoreWork) {
		t.Fatalf("equal-work branch: %v", err)
	}
	// Less work: refused.
	less := g.Fork(30, 2).Chain(5)
	if err := addBlocks(t, s, g, less); !errors.Is(err, headers.ErrNotMoreWork) {
		t.Fatalf("less-work branch: %v", err)
	}
	if tip := s.Tip(); tip.Hash != main[39].Hash {
		t.Fatalf("tip moved to %v after refused branches", tip.Hash)
	}

	// More work: switch, and the replaced blocks are gone.
	f := g.Fork(30, 3)
	more := f.Chain(12)
	if err := addBlocks(t, s, f, more); err != nil {
		t.Fatalf("more-work branch: %v", err)
	}
	if tip := s.Tip(); tip.Height != 42 || tip.Hash != more[11].Hash {
		t.Fatalf("tip %d %v after reorg", tip.Height, tip.Hash)
	}
	if b, ok := s.BlockAt(36); !ok || b.Hash == main[35].Hash || b.Hash != more[5].Hash {
		t.Fatalf("height 36 after the reorg: %v %v", b.Hash, ok)
	}
	if b, _ := s.BlockAt(30); b.Hash != main[29].Hash {
		t.Fatalf("shared block lost: %v", b.Hash)
	}
}

func TestStorePruning(t *testing.T) {
	p := &headers.RegTestParams
	minKeep := int32(p.MedianTimeSpan) + p.RetargetInterval + 1
	if _, err := headers.OpenStore(filepath.Join(t.TempDir(), "x.db"), p, p.GenesisAnchor(),
		headers.StoreOptions{KeepHeaders: minKeep - 1}); err == nil {
		t.Fatal("a keep below what retargeting needs was accepted")
	}
	s, _ := openTestStore(t, headers.StoreOptions{KeepHeaders: minKeep, NoSync: true})
	g := chaingen.New(p, 14)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	blocks := g.Chain(6500)
	for i := 0; i < len(blocks); i += 500 {
		if err := addBlocks(t, s, g, blocks[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	tip, base := s.Tip().Height, s.Base()
	if base == 0 || tip-base+1 < minKeep {
		t.Fatalf("base %d tip %d: not pruned, or pruned below %d", base, tip, minKeep)
	}
	if _, ok := s.BlockAt(base - 1); ok {
		t.Fatal("pruned block still readable")
	}
	// A fork below the prune point cannot be checked: refused.
	f := g.Fork(base-5, 4)
	if err := s.AddHeaders(base-4, fullHeaders(t, f.Chain(3)), testNow(f)); !errors.Is(err, headers.ErrForkTooDeep) {
		t.Fatalf("fork below base: %v", err)
	}
}

func TestStoreSecondOpenerFailsFast(t *testing.T) {
	_, path := openTestStore(t, headers.StoreOptions{})
	start := time.Now()
	_, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(),
		headers.StoreOptions{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, headers.ErrDatabaseInUse) {
		t.Fatalf("second opener: %v", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the database: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second opener took %v", d)
	}
}

func TestStoreWrongNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = headers.OpenStore(path, &headers.MainNetParams, headers.MainNetParams.GenesisAnchor(), headers.StoreOptions{})
	if !errors.Is(err, headers.ErrWrongNetwork) {
		t.Fatalf("regtest database opened as mainnet: %v", err)
	}
}

// TestStoreDamagedFile: a file that is not a bbolt database, or whose
// meta pages fail their checksums, is ErrCorrupt and names the file.
func TestStoreDamagedFile(t *testing.T) {
	garbage := bytes.Repeat([]byte("not a database "), 8000)
	_, good := openTestStore(t, headers.StoreOptions{})
	damaged, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Both meta pages (the first two pages): flip a byte of the root
	// bucket's page number, which their checksums cover, in each.
	pageSize := os.Getpagesize()
	damaged[40] ^= 0xff
	damaged[pageSize+40] ^= 0xff
	for name, content := range map[string][]byte{"garbage": garbage, "bad checksums": damaged} {
		path := filepath.Join(t.TempDir(), "h.db")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{})
		if !errors.Is(err, headers.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStoreCheckpointAnchor(t *testing.T) {
	p := &headers.MainNetParams
	anchor := headers.Anchor{
		Info: headers.BlockInfo{Height: 518111, Hash: p.GenesisHash, Time: 1596445637,
			Bits: 0x1712db39, NextBits: 0x1712db39},
		Work: big.NewInt(12345),
	}
	s, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, anchor, headers.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if tip := s.Tip(); tip.Height != 518111 || tip.Work.Int64() != 12345 {
		t.Fatalf("tip %+v", tip)
	}
	info, ok := s.BlockAt(518111)
	if !ok || info.NextBits != 0x1712db39 || info.Time != 1596445637 {
		t.Fatalf("anchor info %+v", info)
	}
	if _, err := s.HeaderAt(518111); !errors.Is(err, headers.ErrHeightNotFound) {
		t.Fatalf("anchor has no header bytes: %v", err)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
}

// crashChains are the chains the crash helper writes: a main chain and a
// heavier branch from crashForkAt.
const (
	crashSeed   = 77
	crashLen    = 400
	crashForkAt = 200
	crashChunk  = 20
)

func crashChains() (*chaingen.Generator, *chaingen.Generator) {
	g := chaingen.New(&headers.RegTestParams, crashSeed)
	g.MinCoinbase, g.MaxCoinbase = 200, 400
	g.Chain(crashLen)
	f := g.Fork(crashForkAt, crashSeed+1)
	f.Chain(crashLen - crashForkAt + 20)
	return g, f
}

// TestStoreCrashHelper is the child process of TestStoreCrash: it appends
// the main chain chunk by chunk, then reorganizes to the heavier branch,
// printing each committed height. It does nothing in a normal run.
func TestStoreCrashHelper(t *testing.T) {
	path := os.Getenv("NCSPV_CRASH_DB")
	if path == "" {
		t.Skip("helper process for TestStoreCrash")
	}
	g, f := crashChains()
	s, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	now := testNow(f)
	for start := int(s.Tip().Height) + 1; start <= crashLen; start += crashChunk {
		blocks := g.Blocks[start:min(start+crashChunk, crashLen+1)]
		if err := s.AddHeaders(int32(start), fullHeaders(t, blocks), now); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("committed", s.Tip().Height)
	}
	branch := f.Blocks[crashForkAt+1:]
	if err := s.AddHeaders(crashForkAt+1, fullHeaders(t, branch), now); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("reorged", s.Tip().Height)
	os.Exit(0)
}

// TestStoreCrash kills a writer with SIGKILL at random points, 20 times,
// and checks that the store reopens consistent, holding at least what was
// reported committed, on the old chain or the new branch, never a mix.
func TestStoreCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	g, f := crashChains()
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 20
	for round := 0; round < rounds; round++ {
		os.Remove(path)
		// Kill after 0..all appends; every third round right around the
		// reorg, which rewrites 200 blocks in one transaction.
		killAfter := rng.IntN(crashLen/crashChunk + 1)
		extra := time.Duration(rng.IntN(3000)) * time.Microsecond
		if round%3 == 0 {
			killAfter = crashLen / crashChunk
			extra = time.Duration(rng.IntN(40)) * time.Millisecond
		}
		committed := runAndKill(t, path, killAfter, extra)

		s, err := headers.OpenStore(path, &headers.RegTestParams, headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if err := s.CheckIntegrity(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		tip := s.Tip()
		if tip.Height < committed {
			t.Fatalf("round %d: tip %d below committed %d", round, tip.Height, committed)
		}
		onMain := int(tip.Height) <= crashLen && g.Blocks[tip.Height].Hash == tip.Hash
		onBranch := int(tip.Height) < len(f.Blocks) && f.Blocks[tip.Height].Hash == tip.Hash
		if !onMain && !onBranch {
			t.Fatalf("round %d: tip %d %v is on neither chain", round, tip.Height, tip.Hash)
		}
		t.Logf("round %d: killed after commit %d, reopened at %d (branch %v)",
			round, committed, tip.Height, onBranch && !onMain)
		s.Close()
	}
}

// runAndKill starts the helper, lets it report killAfter commits, waits a
// little more and kills it. It returns the highest height reported
// committed.
func runAndKill(t *testing.T, path string, killAfter int, extra time.Duration) int32 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreCrashHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), "NCSPV_CRASH_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var committed int32
	sc := bufio.NewScanner(out)
	lines := 0
	for lines < killAfter && sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && (fields[0] == "committed" || fields[0] == "reorged") {
			n, _ := strconv.Atoi(fields[1])
			committed = int32(n)
			lines++
		} else if len(fields) > 0 && fields[0] == "error" {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	time.Sleep(extra)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	go func() {
		for sc.Scan() {
		}
	}()
	_ = cmd.Wait()
	return committed
}

// TestStoreFormat1Upgrade: a database of format 1 (with the hash -> height
// index that format 2 dropped) opens as format 2 with the same chain, and
// the stale index is gone.
func TestStoreFormat1Upgrade(t *testing.T) {
	p := &headers.RegTestParams
	path := filepath.Join(t.TempDir(), "headers.db")
	s, err := headers.OpenStore(path, p, p.GenesisAnchor(), headers.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	g := chaingen.New(p, 21)
	if err := addBlocks(t, s, g, g.Chain(50)); err != nil {
		t.Fatal(err)
	}
	tip := s.Tip()
	s.Close()

	// Make it a format 1 database, as ncspv wrote it before.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		idx, err := tx.CreateBucket([]byte("index"))
		if err != nil {
			return err
		}
		if err := idx.Put(tip.Hash[:], []byte{0, 0, 0, 50}); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{0, 0, 0, 1})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = headers.OpenStore(path, p, p.GenesisAnchor(), headers.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatalf("open a format 1 database: %v", err)
	}
	if s.Tip().Hash != tip.Hash || s.Tip().Height != 50 {
		t.Fatalf("tip after the upgrade: %d %v", s.Tip().Height, s.Tip().Hash)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("index")) != nil {
			t.Error("the format 1 index is still there")
		}
		if f := tx.Bucket([]byte("meta")).Get([]byte("format")); string(f) != "\x00\x00\x00\x02" {
			t.Errorf("format after the upgrade: %x", f)
		}
		return nil
	})

	// An unknown format is refused, not guessed at.
	db.Close()
	db, _ = bolt.Open(path, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{0, 0, 0, 9})
	})
	db.Close()
	if _, err := headers.OpenStore(path, p, p.GenesisAnchor(), headers.StoreOptions{}); !errors.Is(err, headers.ErrCorrupt) {
		t.Fatalf("format 9: %v, want ErrCorrupt", err)
	}
}

// anchoredStore opens a regtest store anchored at block anchor of g, as a
// checkpoint would anchor it: no header bytes, the next bits given.
func anchoredStore(t *testing.T, g *chaingen.Generator, anchor int32) *headers.Store {
	t.Helper()
	b := g.Blocks[anchor]
	a := headers.Anchor{
		Info: headers.BlockInfo{Height: anchor, Hash: b.Hash, Time: b.Info.Time,
			NextBits: b.Info.Bits, LastNormalBits: b.Info.Bits},
		Work: big.NewInt(1 << 40),
	}
	s, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), g.Params, a, headers.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func headersOf(blocks []*chaingen.Block) []headers.Header {
	out := make([]headers.Header, len(blocks))
	for i, b := range blocks {
		out[i] = b.Header.Header
	}
	return out
}

// TestStoreAncestors: the ancestors of a checkpoint anchor give the first
// blocks after it Core's median time past (a block dated before its parent
// is valid), the anchor gains its header, the work adds up, and no branch
// may fork below the anchor.
func TestStoreAncestors(t *testing.T) {
	g := chaingen.New(&headers.RegTestParams, 91)
	g.Chain(150)
	// Valid in Core: after the median of blocks 140..150, before block 150.
	late := g.Next(chaingen.Spec{Time: g.Tip().Info.Time - 1})
	g.Chain(5)
	s := anchoredStore(t, g, 150)

	err := s.AddHeaders(151, fullHeaders(t, []*chaingen.Block{late}), testNow(g))
	var missing headers.ErrMissingAncestor
	if !errors.As(err, &missing) {
		t.Fatalf("block 151 without the anchor's ancestors: %v, want ErrMissingAncestor", err)
	}

	// Refused: a run that does not end at the anchor, and a broken link.
	if err := s.AddAncestors(headersOf(g.Blocks[139:150])); !errors.Is(err, headers.ErrDoesNotConnect) {
		t.Fatalf("ancestors ending below the anchor: %v", err)
	}
	broken := headersOf(g.Blocks[140:151])
	broken[3].Nonce++
	if err := s.AddAncestors(broken); !errors.Is(err, headers.ErrDoesNotConnect) {
		t.Fatalf("unlinked ancestors: %v", err)
	}
	if s.Base() != 150 {
		t.Fatalf("a refused run moved the base to %d", s.Base())
	}

	if err := s.AddAncestors(headersOf(g.Blocks[140:151])); err != nil {
		t.Fatal(err)
	}
	if s.Base() != 140 || s.ForkFloor() != 150 {
		t.Fatalf("base %d, fork floor %d; want 140, 150", s.Base(), s.ForkFloor())
	}
	if h, err := s.HeaderAt(150); err != nil || h.BlockHash() != g.Blocks[150].Hash {
		t.Fatalf("anchor header: %v", err)
	}
	if err := addBlocks(t, s, g, g.Blocks[151:]); err != nil {
		t.Fatalf("blocks after the anchor, one dated before its parent: %v", err)
	}
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
	// A heavier branch from below the anchor is refused, whatever its work.
	f := g.Fork(145, 5)
	f.Chain(30)
	if err := addBlocks(t, s, f, f.Blocks[146:]); !errors.Is(err, headers.ErrForkTooDeep) {
		t.Fatalf("branch forking below the anchor: %v", err)
	}
	if tip := s.Tip(); tip.Hash != g.Tip().Hash {
		t.Fatalf("tip moved to %v", tip.Hash)
	}
}
