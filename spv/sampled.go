package spv

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
)

// The sampled sync (docs/sampled-sync.md): a long catch-up takes the
// 80-byte headers whole, checks every rule that needs no AuxPoW on them,
// then checks the proof of work of a random sample drawn after the server
// has committed to the chain, and of every header the newest period and
// the name proofs use; the rest is checked in the background.
const (
	// newestFull is how many of the newest headers come in full.
	newestFull = chunkSize
	// sampledSyncMin: a catch-up of fewer headers takes them all in full;
	// the newest period would be most of it anyway.
	sampledSyncMin = 2 * chunkSize
	// sampleBatch is how many full headers one sample request asks for
	// until their size is known: at most 800 KB of hex even at 4 KB a
	// header, under the sync reply cap. firstSampleBatch are asked for
	// first, alone, to learn their size.
	sampleBatch      = 100
	firstSampleBatch = 32

	// The security target: a chain with less than 90 % of the work its
	// bits claim is caught with probability at least 1 - 2^-40.
	sampleFakeShare = 0.10
	sampleBits      = 40
)

// fetchForm is how fetchRange asks for headers.
type fetchForm struct {
	// cp > 0: the 80-byte form under cp_height cp (at or above the
	// range's end); the headers are stored with their work unchecked.
	cp int32
	// packed: full headers, as many a request as fill a power of two
	// (ElectrumX pads every reply to one), judged by the sizes of the
	// full headers sampled; without samples, ChunkSize.
	packed bool
}

// chunkCount is how many of the remaining headers the next request of a
// fetchRange in form asks for.
func (e *Engine) chunkCount(form fetchForm, remaining int32) int32 {
	switch {
	case form.cp > 0:
		return min(bareChunkFor(form.cp), remaining)
	case form.packed:
		if avg, sd, ok := e.fullHeaderSize(); ok {
			// Joined in one hex string: twice the bytes, no more.
			return int32(packCount(int(remaining), 2*avg, 2*sd))
		}
	}
	return min(int32(e.cfg.ChunkSize), remaining)
}

// bareChunkFor is how many 80-byte headers one request under cp_height
// cp asks for: their 160 hex characters each, the branch (one hash per
// level of the tree of cp+1 blocks) and the envelope stay under 256 KiB,
// the power of two ElectrumX pads the reply to (2016 headers would be
// padded to 512 KiB).
func bareChunkFor(cp int32) int32 {
	branch := 70 * (bits.Len32(uint32(cp)) + 1)
	return int32(min((256<<10-1024-branch)/(2*headers.HeaderSize), chunkSize))
}

// maxPackedReply is the largest reply packCount fills: twice it, the
// next power of two, stays under the sync reply cap however ElectrumX
// pads, and a larger class would waste no less.
const maxPackedReply = 512 << 10

// packCount is how many items of avg ± sd bytes one reply should carry
// so that ElectrumX's padding to a power of two wastes little: as many as
// surely (four standard deviations) fit the largest size class up to
// maxPackedReply that they fill, else all that remain. Taken in turn,
// the counts split a range as a number is split into powers of two.
func packCount(remaining int, avg, sd float64) int {
	if avg <= 0 {
		return min(remaining, sampleBatch)
	}
	for class := float64(maxPackedReply); class >= 4096; class /= 2 {
		n := int((class - 1024) / avg)
		for n > 0 && float64(n)*avg+4*sd*math.Sqrt(float64(n))+1024 > class {
			n--
		}
		if n > 0 && n <= remaining {
			return min(n, chunkSize)
		}
	}
	return min(remaining, chunkSize)
}

// noteFullHeaderSize adds a full header's size to the running estimate.
func (e *Engine) noteFullHeaderSize(size int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := float64(size)
	e.fullSizes.n++
	e.fullSizes.sum += f
	e.fullSizes.sumSq += f * f
}

// fullHeaderSize is the mean and standard deviation of the full headers
// sampled, in bytes, once there are enough of them.
func (e *Engine) fullHeaderSize() (avg, sd float64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.fullSizes
	if st.n < 16 {
		return 0, 0, false
	}
	avg = st.sum / float64(st.n)
	return avg, math.Sqrt(max(st.sumSq/float64(st.n)-avg*avg, 0)), true
}

// errGarbled: a server sent an 80-byte header chunk that does not link
// together, as ElectrumX 1.19 and later do for any start above 0.
var errGarbled = errors.New("80-byte header reply does not link together")

// sampledCatchUp says whether a catch-up from ours to serverTip takes the
// 80-byte form.
func (e *Engine) sampledCatchUp(ours, serverTip int32) bool {
	return e.cfg.SampledSync && serverTip-ours > sampledSyncMin
}

// fetchBare fetches count 80-byte headers from start under cp_height cp.
// A reply that does not link together (ElectrumX 1.19+'s split bug) is
// not the server lying: the server gives way to one not known to garble
// (errGarbled), or, when there is none, is asked for the same headers one
// per request, a form the bug does not touch (markGarbles).
func (e *Engine) fetchBare(ctx context.Context, c *electrumx.Client, start, count, cp int32) chunkResult {
	res := chunkResult{start: start}
	srv := c.Server().String()
	if e.garbleState(srv) == garbleNone {
		r, err := c.BlockHeaders(ctx, start, int(count), cp)
		if err != nil {
			res.err = err
			return res
		}
		hdrs, err := parseBare(r.Raw, int(count))
		r.Release()
		if err == nil {
			res.checked = headers.PrecheckBare(hdrs, e.cfg.Params)
			return res
		}
		e.markGarbles(srv, err, start)
	}
	if e.garbleState(srv) == garbleYield {
		res.err = fmt.Errorf("%w: %s gives way to servers without the bug", errGarbled, srv)
		return res
	}
	hdrs, err := e.bareSingles(ctx, c, start, count, cp)
	if err != nil {
		res.err = err
		return res
	}
	res.checked = headers.PrecheckBare(hdrs, e.cfg.Params)
	return res
}

// parseBare parses count joined 80-byte headers that must link together.
func parseBare(raw []byte, count int) ([]headers.Header, error) {
	if len(raw) != count*headers.HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes for %d headers", errGarbled, len(raw), count)
	}
	out := make([]headers.Header, count)
	var prev chainhash.Hash
	for i := range out {
		h, err := headers.ParseHeader(raw[i*headers.HeaderSize : (i+1)*headers.HeaderSize])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errGarbled, err)
		}
		if i > 0 && h.PrevBlock != prev {
			return nil, fmt.Errorf("%w: header %d of the reply", errGarbled, i)
		}
		out[i], prev = h, h.BlockHash()
	}
	return out, nil
}

// bareSingles fetches 80-byte headers one per request, in batches.
func (e *Engine) bareSingles(ctx context.Context, c *electrumx.Client, start, count, cp int32) ([]headers.Header, error) {
	srv := c.Server().String()
	out := make([]headers.Header, 0, count)
	// Each reply in the batch: 160 hex characters, a branch of one hash
	// per level of the tree of cp+1 blocks, and the JSON around them.
	item := float64(160 + 70*(bits.Len32(uint32(cp))+1) + 130)
	for from := start; from < start+count; {
		n := int32(packCount(int(start+count-from), item, 8))
		proofs, errs, err := headerBatch[electrumx.HeaderProofJSON](ctx, c, heightRange(from, int(n)), cp)
		if err != nil {
			return nil, err
		}
		for i := range proofs {
			if errs[i] != nil {
				return out, nil // past the server's tip: a short chunk
			}
			if len(proofs[i].Header) != headers.HeaderSize {
				return nil, lie(srv, "header %d has %d bytes under cp_height", from+int32(i), len(proofs[i].Header))
			}
			h, _ := headers.ParseHeader(proofs[i].Header)
			out = append(out, h)
		}
		from += n
	}
	return out, nil
}

// What is known of a server's 80-byte header chunks.
const (
	garbleNone    = iota // none garbled (yet)
	garbleYield          // garbled: it gives way to servers not known to
	garbleSingles        // garbled: it is asked for single headers
)

func (e *Engine) garbleState(srv string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.garbling[srv]
}

// markGarbles records that srv garbled the chunk at start: single headers
// cost nine times the bytes, so it first gives way to any server, not
// demoted, not known to garble; without one it is asked for single
// headers.
func (e *Engine) markGarbles(srv string, why error, start int32) {
	now := e.cfg.Now()
	e.mu.Lock()
	if e.garbling[srv] != garbleNone {
		e.mu.Unlock()
		return
	}
	state := garbleSingles
	for _, s := range e.cfg.Servers {
		name := s.String()
		if name != srv && e.garbling[name] == garbleNone && !now.Before(e.demotedTill[name]) {
			state = garbleYield
		}
	}
	e.garbling[srv] = state
	e.mu.Unlock()
	if state == garbleYield {
		e.log.Info("server garbles 80-byte header chunks (ElectrumX 1.19+); syncing from another, or from it one header at a time if none does better",
			"server", srv, "start", start, "err", why)
		return
	}
	e.log.Info("server garbles 80-byte header chunks (ElectrumX 1.19+); asking it for single headers",
		"server", srv, "start", start, "err", why)
}

// singlesFrom makes srv, which gave way, sync in the single-header form.
func (e *Engine) singlesFrom(srv string) {
	e.mu.Lock()
	e.garbling[srv] = garbleSingles
	e.mu.Unlock()
}

// checkSample checks the proof of work of a random sample of the stored
// headers whose work is unchecked, if they have not passed one yet. The
// draw uses local cryptographic randomness, after the headers are stored:
// the server committed to them before it could know which it must back
// with real work. A header that lacks its work, or a full header that is
// not the 80-byte one stored, makes the server a liar and its chain goes.
func (e *Engine) checkSample(ctx context.Context, c *electrumx.Client) error {
	st := e.cfg.Store
	v := st.Verification()
	if !v.Gap || v.Sampled {
		return nil
	}
	cum, err := st.WorkSince(v.Low+1, v.End)
	if err != nil {
		return err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return err
	}
	tail := newestTail(cum)
	k := SampleCount(sampleFakeShare, tail, sampleBits)
	heights := SampleHeights(rand.New(rand.NewChaCha8(seed)), cum, v.Low+1, k, tail)
	e.log.Info("checking the proof of work of a random sample of the 80-byte headers",
		"samples", len(heights), "of", v.End-v.Low)
	if err := e.checkFullHeaders(ctx, c, heights); err != nil {
		var le *LieError
		if errors.As(err, &le) {
			if derr := st.DropUnverified(); derr != nil {
				return errors.Join(err, fmt.Errorf("%w: %w", ErrStoreWrite, derr))
			}
			e.log.Warn("a sampled header lacks its proof of work: the headers it came with are dropped",
				"server", c.Server().String(), "back_to", st.Tip().Height, "err", err)
		}
		return err
	}
	if err := st.MarkSampled(v.Low, v.End); err != nil {
		return err
	}
	e.mu.Lock()
	e.samples = len(heights)
	e.mu.Unlock()
	e.log.Info("sampled proof-of-work check passed; the chain is usable, full verification follows",
		"height", st.Tip().Height)
	return nil
}

// newestTail is the share of the work above the gap whose cumulative
// work is cum that the newest period, checked in full, holds: FlyClient's
// tail. Its headers are not fetched yet; they are taken to carry the
// gap's newest header's work each (the retarget rule keeps them within a
// factor of four, and the draw's bound holds for whatever tail it uses).
func newestTail(cum []float64) float64 {
	n := len(cum)
	if n == 0 {
		return maxTail
	}
	last := cum[n-1]
	if n > 1 {
		last -= cum[n-2]
	}
	tail := newestFull * last
	return tail / (cum[n-1] + tail)
}

// checkFullHeaders fetches the full headers at heights and checks that
// each is the stored 80-byte header and carries the work its bits claim.
// A first small batch tells the headers' size; the rest go in batches
// that fill ElectrumX's padded replies, a few in flight at once.
func (e *Engine) checkFullHeaders(ctx context.Context, c *electrumx.Client, heights []int32) error {
	first := heights[:min(firstSampleBatch, len(heights))]
	if err := e.checkFullBatch(ctx, c, first); err != nil {
		return err
	}
	var batches [][]int32
	for rest := heights[len(first):]; len(rest) > 0; {
		n := min(sampleBatch, len(rest))
		if avg, sd, ok := e.fullHeaderSize(); ok {
			// Each is a JSON-RPC reply of its own in the batch's array.
			n = packCount(len(rest), 2*avg+64, 2*sd)
		}
		batches = append(batches, rest[:n])
		rest = rest[n:]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(batches))
	sem := make(chan struct{}, e.cfg.Pipeline)
dispatch:
	for _, batch := range batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break dispatch // a batch failed: its error is collected below
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.checkFullBatch(ctx, c, batch); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	var lieErr error
	for err := range errs {
		var le *LieError
		if errors.As(err, &le) {
			lieErr = err
		} else if lieErr == nil && !errors.Is(err, context.Canceled) {
			lieErr = err
		}
	}
	if lieErr == nil {
		return ctx.Err()
	}
	return lieErr
}

func (e *Engine) checkFullBatch(ctx context.Context, c *electrumx.Client, heights []int32) error {
	srv := c.Server().String()
	rctx, rcancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer rcancel()
	res, errs, err := headerBatch[electrumx.HexBytes](rctx, c, heights, 0)
	if err != nil {
		return err
	}
	for i, h := range heights {
		if errs[i] != nil {
			return lie(srv, "full header %d: %v", h, errs[i])
		}
		if err := e.checkFullHeader(srv, h, res[i]); err != nil {
			return err
		}
		e.noteFullHeaderSize(len(res[i]))
	}
	return nil
}

// checkFullHeader checks that raw, the full header at height, is the
// stored 80-byte header and carries the work its bits claim, and
// remembers it as checked.
func (e *Engine) checkFullHeader(srv string, height int32, raw []byte) error {
	fh, n, err := headers.ParseFullHeader(raw)
	if err != nil || n != len(raw) {
		return lie(srv, "full header %d does not parse: %v", height, err)
	}
	hash, err := e.checkWork(srv, height, fh)
	if err != nil {
		return err
	}
	e.noteWorkChecked(height, hash)
	return nil
}

// checkWork checks that fh is the stored header at height and carries
// the work its bits claim; it returns its hash.
func (e *Engine) checkWork(srv string, height int32, fh *headers.FullHeader) (chainhash.Hash, error) {
	hash := fh.BlockHash()
	stored, ok := e.cfg.Store.BlockAt(height)
	if !ok {
		return hash, fmt.Errorf("%w: %d", headers.ErrVerificationMoved, height)
	}
	if stored.Hash != hash {
		return hash, lie(srv, "full header %d is %v, not the header %v it sent before", height, hash, stored.Hash)
	}
	if err := headers.CheckProofOfWork(fh, hash, e.cfg.Params); err != nil {
		return hash, lie(srv, "header %d: %v", height, err)
	}
	return hash, nil
}

// maxWorkChecked bounds the heights remembered as checked in full above
// the gap's low end (samples and name-proof blocks).
const maxWorkChecked = 1 << 14

func (e *Engine) noteWorkChecked(height int32, hash chainhash.Hash) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.workChecked) >= maxWorkChecked {
		clear(e.workChecked)
	}
	e.workChecked[height] = hash
}

// checkBlockWork makes sure the block at height, which a name proof uses,
// had its proof of work checked: in the gap of a sampled chain it fetches
// the full header from c first.
func (e *Engine) checkBlockWork(ctx context.Context, c *electrumx.Client, height int32) error {
	v := e.cfg.Store.Verification()
	if !v.Gap || height <= v.Low || height > v.End {
		return nil
	}
	stored, ok := e.cfg.Store.BlockAt(height)
	e.mu.Lock()
	known, seen := e.workChecked[height]
	e.mu.Unlock()
	if ok && seen && known == stored.Hash {
		return nil
	}
	r, err := c.BlockHeader(ctx, height, 0)
	if err != nil {
		return err
	}
	return e.checkFullHeader(c.Server().String(), height, r.Header)
}

// fullVerifyRetry is how long the background verification waits when no
// server could carry it on.
const fullVerifyRetry = time.Minute

// startFullVerify starts checking the rest of a sampled chain's proof of
// work in the background, unless it runs already or is configured off.
func (e *Engine) startFullVerify() {
	v := e.cfg.Store.Verification()
	if e.cfg.NoFullVerify || !v.Gap || !v.Sampled {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.verifying || e.bgCtx.Err() != nil {
		return
	}
	e.verifying = true
	e.bgWG.Add(1)
	go func() {
		defer e.bgWG.Done()
		e.verifyGap(e.bgCtx)
		e.mu.Lock()
		e.verifying = false
		e.mu.Unlock()
	}()
}

// verifyGap fetches the full headers of the gap, lowest first, checks that
// each is the stored one and carries its work, and moves the gap's low end
// up after every chunk, so that a restart resumes where it stopped. A
// header without its work may be a server lying about a good header (the
// AuxPoW is not in the block hash), so the server is demoted and another
// asked; the sample already vouches for the chain.
func (e *Engine) verifyGap(ctx context.Context) {
	g := e.cfg.Router.ForSync()
	key := g.Key + "/verify" // its own connection: a sync hangs up its own
	for ctx.Err() == nil {
		v := e.cfg.Store.Verification()
		if !v.Gap {
			e.log.Info("every header's proof of work is verified", "height", e.cfg.Store.Tip().Height)
			return
		}
		if !v.Sampled {
			return // a sync samples the new gap and starts this again
		}
		moved := false
		for _, s := range e.servers() {
			if e.isDemoted(s) || ctx.Err() != nil {
				continue
			}
			c, err := e.cfg.Pool.Get(ctx, s, key, electrumx.DialFunc(g.Dial))
			if err != nil {
				continue
			}
			c.SetMaxLine(e.syncLineLimit())
			err = e.verifyFrom(ctx, c, v)
			e.cfg.Pool.Drop(c)
			var le *LieError
			switch {
			case err == nil || errors.Is(err, headers.ErrVerificationMoved):
				moved = true
			case errors.As(err, &le):
				e.demote(s, err, false)
			case ctx.Err() == nil:
				e.log.Info("background verification: server failed", "server", s.String(), "err", err)
			}
			if moved {
				break
			}
		}
		if !moved {
			select {
			case <-ctx.Done():
			case <-time.After(fullVerifyRetry):
			}
		}
	}
}

// verifyFrom checks the gap v's headers from c, chunk by chunk, with two
// requests in flight; it returns when the gap is checked through or moved.
func (e *Engine) verifyFrom(ctx context.Context, c *electrumx.Client, v headers.Verification) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := c.Server().String()
	type chunk struct {
		top  int32 // the last height checked
		last chainhash.Hash
		err  error
	}
	size := int32(e.cfg.ChunkSize)
	fetch := func(from int32) chan chunk {
		ch := make(chan chunk, 1)
		count := min(size, v.End-from+1)
		go func() {
			rctx, rcancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
			defer rcancel()
			r, err := c.BlockHeaders(rctx, from, int(count), 0)
			if err != nil {
				ch <- chunk{err: err}
				return
			}
			// Checked before Release: parsed headers point into Raw.
			defer r.Release()
			fhs, err := headers.ParseFullHeadersN(r.Raw, int(count))
			if err == nil && len(fhs) != int(count) {
				err = fmt.Errorf("%d headers for %d", len(fhs), count)
			}
			if err != nil {
				ch <- chunk{err: lie(srv, "full headers from %d: %v", from, err)}
				return
			}
			ck := chunk{top: from + count - 1}
			for i, fh := range fhs {
				if ck.last, ck.err = e.checkWork(srv, from+int32(i), fh); ck.err != nil {
					break
				}
			}
			ch <- ck
		}()
		return ch
	}
	var queue []chan chunk
	next := v.Low + 1
	for len(queue) < 2 && next <= v.End {
		queue = append(queue, fetch(next))
		next += size
	}
	for len(queue) > 0 {
		var ck chunk
		select {
		case ck = <-queue[0]:
		case <-ctx.Done():
			return ctx.Err()
		}
		queue = queue[1:]
		if ck.err != nil {
			return ck.err
		}
		if next <= v.End {
			queue = append(queue, fetch(next))
			next += size
		}
		if err := e.cfg.Store.MarkVerified(ck.top, ck.last); err != nil {
			return err
		}
	}
	return nil
}
