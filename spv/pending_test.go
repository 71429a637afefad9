package spv

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// TestPendingQueueWhileCommitting queues batches while the committer is
// still storing the previous one (fsync on, so it is slow) and reads the
// pending chain all the while, as a sync does. Every height must read
// back as generated, from the pending run and then from the store.
//
// It would not have caught the bug it was written for: a batch was put
// together, outside the lock, from chunks the committer was shifting out
// from under it. That needs the shift to land inside the copy, and the
// race detector does not see bulk copies of slice elements. About one
// bench run in fifty then saw a fork that was not there and fetched the
// whole chain again; the batch is now built from a copy taken under the
// lock.
func TestPendingQueueWhileCommitting(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 17)
	g.MinCoinbase, g.MaxCoinbase = 100, 200
	const chunk, chunks = 126, 40
	g.Chain(chunk * chunks)
	store, err := headers.OpenStore(filepath.Join(t.TempDir(), "headers.db"), p, checkpoints.ForNetwork(p).Anchor(), headers.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	pend := &pending{store: store, start: 1}
	cm := newCommitter(store, pend, newProgress(slog.New(slog.DiscardHandler), 0, chunk*chunks))
	var readers sync.WaitGroup
	stop := make(chan struct{})
	readers.Add(1)
	go func() { // another reader of the pending chain, like VerifyPrechecked
		defer readers.Done()
		for h := int32(0); ; h = (h + 97) % (chunk * chunks) {
			select {
			case <-stop:
				return
			default:
			}
			if info, ok := pend.BlockAt(h); ok && info.Hash != g.Blocks[h].Hash {
				t.Errorf("pending block %d is %s, want %s", h, info.Hash, g.Blocks[h].Hash)
				return
			}
		}
	}()
	for c := 0; c < chunks; c++ {
		vh := make([]headers.VerifiedHeader, chunk)
		for i := range vh {
			b := g.Blocks[1+c*chunk+i]
			vh[i] = headers.VerifiedHeader{Header: b.Header.Header, Info: b.Info}
		}
		pend.append(vh)
		top := int32((c + 1) * chunk)
		if info, ok := pend.BlockAt(top); !ok || info.Hash != g.Blocks[top].Hash {
			t.Fatalf("after chunk %d: block %d is %v (%v), want %s", c, top, info.Hash, ok, g.Blocks[top].Hash)
		}
		if pend.unqueued() >= 2*chunk {
			pend.queueRest(cm)
		}
	}
	pend.queueRest(cm)
	if err := cm.finish(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	readers.Wait()
	if got := cm.stored(); got != chunk*chunks {
		t.Fatalf("committed %d headers, want %d", got, chunk*chunks)
	}
	for h := int32(0); h <= chunk*chunks; h++ {
		if info, ok := store.BlockAt(h); !ok || info.Hash != g.Blocks[h].Hash {
			t.Fatalf("stored block %d is %v (%v), want %s", h, info.Hash, ok, g.Blocks[h].Hash)
		}
	}
}
