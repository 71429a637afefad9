//go:build linux

package headers_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// mappedRSS is how much of the memory maps of path is resident in this
// process, from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) (kb int, mapped bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			mapped = mapped || in
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			kb += n
		}
	}
	return kb, mapped
}

// TestStoreDropsMappedPages: after a commit, the pages of the database's
// memory map that the commit read are no longer resident in this process
// (they stay in the page cache). Without that, a long sync kept every page
// it had read: 15 MiB of RSS for a pruned store.
func TestStoreDropsMappedPages(t *testing.T) {
	s, path := openTestStore(t, headers.StoreOptions{NoSync: true})
	g := chaingen.New(&headers.RegTestParams, 31)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	blocks := g.Chain(10 * 2016)
	read := 0
	for i := 0; i < len(blocks); i += 2016 {
		if err := addBlocks(t, s, g, blocks[i:i+2016]); err != nil {
			t.Fatal(err)
		}
		// Reading every stored header touches every page of the map.
		for h := int32(0); h <= s.Tip().Height; h++ {
			if _, ok := s.BlockAt(h); !ok {
				t.Fatalf("block %d missing", h)
			}
		}
		kb, mapped := mappedRSS(t, path)
		if !mapped {
			t.Fatalf("%s is not mapped", path)
		}
		read = max(read, kb)
	}
	// The reads above made the map resident; a commit drops it again.
	if read < 1024 {
		t.Fatalf("reading %d headers made only %d KiB of the map resident", s.Tip().Height, read)
	}
	if err := addBlocks(t, s, g, g.Chain(10)); err != nil {
		t.Fatal(err)
	}
	if kb, _ := mappedRSS(t, path); kb > 256 {
		t.Errorf("%d KiB of the map resident after a commit (%d KiB before it)", kb, read)
	}
}
