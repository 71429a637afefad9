package spv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
)

// chunkSize is ElectrumX's maximum headers per request.
const chunkSize = 2016

// DefaultChunkSize is what a sync request asks for by default: with four
// requests in flight that is 504 headers, about 2 MB of hex, which keeps
// peak memory low and, pipelined, costs no throughput (BENCHMARKS.md).
const DefaultChunkSize = 126

// errServerBehind: a server's tip is below ours; it is not a liar, just of
// no use for sync.
var errServerBehind = errors.New("server is behind our tip")

type chunkResult struct {
	start int32
	// checked holds the parsed, prechecked headers when raw parsed; the
	// context-free checks run here, in the request's goroutine, so that
	// they use another core than the sync loop.
	checked  []headers.Prechecked
	parseErr error
	err      error
}

// syncWith downloads, verifies and stores headers from s up to its tip,
// keeping Pipeline chunk requests in flight so that sync is bound by the
// network, not by round trips.
func (e *Engine) syncWith(ctx context.Context, s electrumx.Server) error {
	c, err := e.syncConn(ctx, s)
	if err != nil {
		return err
	}
	e.mu.Lock()
	following := e.following
	e.mu.Unlock()
	if !following {
		// The subscription below makes the server announce every block:
		// when not following, hang up after the sync so that an idle
		// ncspv makes no traffic.
		defer e.cfg.Pool.Drop(c)
	}
	err = e.syncHeaders(ctx, c)
	if err != nil && !errors.Is(err, errServerBehind) {
		return err
	}
	// Headers stored in 80-byte form (by this sync, or by one a crash or
	// a liar cut short) are sampled before anything relies on them.
	if serr := e.checkSample(ctx, c); serr != nil {
		return serr
	}
	return err
}

// syncHeaders brings our chain up to c's tip.
func (e *Engine) syncHeaders(ctx context.Context, c *electrumx.Client) error {
	s := c.Server()
	tctx, cancel := context.WithTimeout(ctx, e.cfg.TipTimeout)
	note, _, err := c.SubscribeHeaders(tctx)
	cancel()
	if err != nil {
		return err
	}
	serverTip := note.Height
	e.mu.Lock()
	e.serverTip = serverTip
	e.mu.Unlock()
	if err := e.ensureAncestors(ctx, c); err != nil {
		return err
	}

	ours := e.cfg.Store.Tip()
	if serverTip <= ours.Height {
		return e.notHigher(ctx, c, serverTip, note.Hex)
	}

	if serverTip == ours.Height+1 {
		// The subscription brought the one new header: no request, so no
		// reply under 1 KiB for ElectrumX 1.20 to hold for a second.
		fh, n, perr := headers.ParseFullHeader(note.Hex)
		switch {
		case perr != nil || n != len(note.Hex):
			// Fetched and checked below like any other.
		case fh.PrevBlock != ours.Hash:
			return e.switchBranch(ctx, c, serverTip)
		default:
			err := e.cfg.Store.AddHeaders(serverTip, []*headers.FullHeader{fh}, e.cfg.Now())
			var re headers.RuleError
			if errors.As(err, &re) {
				return blame(s.String(), fmt.Sprintf("tip header %d", serverTip), err)
			}
			if err == nil {
				return nil
			}
		}
	}

	progress := newProgress(e.log, ours.Height, serverTip)
	next := ours.Height + 1
	fellBack := false
	fetchTo := func(end int32, form fetchForm) error {
		for next <= end {
			n, err := e.fetchRange(ctx, c, next, end, form, progress, &fellBack)
			next += n
			if errors.Is(err, headers.ErrDoesNotConnect) {
				// The branch switch takes the server's chain to its tip:
				// this sync asks for nothing more.
				next = serverTip + 1
				return e.switchBranch(ctx, c, serverTip)
			}
			if err != nil {
				return err
			}
			if n == 0 {
				// Its announced tip is a claim it does not back: asking again
				// would only repeat empty replies (a busy loop).
				return lie(s.String(), "announced tip %d but sent no header from %d", serverTip, next)
			}
		}
		return nil
	}
	if e.sampledCatchUp(ours.Height, serverTip) {
		// 80-byte headers up to the newest period, which comes in full:
		// the server commits to the whole chain before the sample is drawn.
		e.log.Info("catching up with 80-byte headers; their proof of work is checked by sample, then in full in the background",
			"headers", serverTip-ours.Height)
		if err := fetchTo(serverTip-newestFull, fetchForm{cp: serverTip}); err != nil {
			return err
		}
		// The sample is drawn now, over what is stored; the newest period
		// then comes in full, in requests sized from the samples so that
		// ElectrumX's padding wastes little.
		if err := e.checkSample(ctx, c); err != nil {
			return err
		}
		if err := fetchTo(serverTip, fetchForm{packed: true}); err != nil {
			return err
		}
	}
	if err := fetchTo(serverTip, fetchForm{}); err != nil {
		return err
	}
	progress.done(e.cfg.Store.Tip().Height)
	return nil
}

// notHigher handles a server whose announced tip is not above ours. On our
// chain it is in sync or behind. On another branch it may still have more
// work (a shorter chain of harder blocks, possible on testnet), and Core
// follows the most work, not the most blocks: the branch is fetched and
// taken if it has more. Less work is not a lie, just a branch we keep off.
func (e *Engine) notHigher(ctx context.Context, c *electrumx.Client, serverTip int32, tipHex []byte) error {
	if len(tipHex) < headers.HeaderSize {
		return lie(c.Server().String(), "announced tip header has %d bytes", len(tipHex))
	}
	hash := chainhash.DoubleHashH(tipHex[:headers.HeaderSize])
	ours := e.cfg.Store.Tip()
	if info, ok := e.cfg.Store.BlockAt(serverTip); ok && info.Hash == hash {
		if serverTip == ours.Height {
			return nil // in sync
		}
		return fmt.Errorf("%w: server at %d, we are at %d", errServerBehind, serverTip, ours.Height)
	}
	err := e.switchBranch(ctx, c, serverTip)
	if errors.Is(err, headers.ErrNotMoreWork) {
		return fmt.Errorf("%w: on a branch with less work (%v)", errServerBehind, err)
	}
	return err
}

// switchBranch handles a server on another branch below our tip: it finds
// the fork, from our tip or the server's, whichever is lower, down (our
// tip may have grown during this sync), and takes the server's branch if
// it has more work.
func (e *Engine) switchBranch(ctx context.Context, c *electrumx.Client, serverTip int32) error {
	fork, err := e.findFork(ctx, c, min(e.cfg.Store.Tip().Height, serverTip))
	if err != nil {
		return err
	}
	e.log.Info("server is on a competing branch", "server", c.Server().String(), "fork_height", fork)
	return e.reorgTo(ctx, c, fork, serverTip)
}

// fetchRange pipelines chunk requests from start to end and stores them
// in order. It returns how many headers it stored.
//
// form says how the headers are asked for.
func (e *Engine) fetchRange(ctx context.Context, c *electrumx.Client, start, end int32, form fetchForm, p *progress, fellBack *bool) (int32, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		start, count int32
		ch           chan chunkResult
	}
	var queue []slot
	nextReq := start
	issue := func() {
		for len(queue) < e.cfg.Pipeline && nextReq <= end {
			count := e.chunkCount(form, end-nextReq+1)
			sl := slot{start: nextReq, count: count, ch: make(chan chunkResult, 1)}
			go func(from, count int32) {
				rctx, rcancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
				defer rcancel()
				if form.cp > 0 {
					sl.ch <- e.fetchBare(rctx, c, from, count, form.cp)
					return
				}
				r, err := c.BlockHeaders(rctx, from, int(count), 0)
				if err != nil {
					sl.ch <- chunkResult{start: from, err: err}
					return
				}
				res := chunkResult{start: from}
				fhs, perr := headers.ParseFullHeadersN(r.Raw, int(count))
				if errors.Is(perr, headers.ErrTooManyHeaders) {
					r.Release()
					sl.ch <- chunkResult{start: from, err: lie(c.Server().String(), "chunk at %d: %v", from, perr)}
					return
				}
				if perr != nil {
					res.parseErr = perr
				} else {
					res.checked = headers.Precheck(fhs, e.cfg.Params)
				}
				// Prechecked headers are copies: nothing points into Raw.
				r.Release()
				sl.ch <- res
			}(nextReq, count)
			queue = append(queue, sl)
			nextReq += count
		}
	}
	// Each chunk is verified as it arrives (so its buffers can go), and
	// verified headers are committed together, up to a retarget period's
	// worth (a commit and its fsyncs per chunk would cost more than
	// verifying them), by a goroutine of their own, so that fetching and
	// verifying go on while the disk syncs.
	pend := &pending{store: e.cfg.Store, start: start}
	cm := newCommitter(e.cfg.Store, pend, p)
	// flush commits what is verified and waits for every commit.
	flush := func() error {
		pend.queueRest(cm)
		return cm.finish()
	}
	issue()
	for len(queue) > 0 {
		sl := queue[0]
		queue = queue[1:]
		var res chunkResult
		select {
		case res = <-sl.ch:
		case <-ctx.Done():
			err := errors.Join(ctx.Err(), flush())
			return cm.stored(), err
		}
		if res.err != nil {
			err := errors.Join(res.err, flush())
			return cm.stored(), err
		}
		if cm.failed() != nil {
			err := cm.finish()
			return cm.stored(), err
		}
		// Refill the pipeline before the work on this chunk.
		short := int32(len(res.checked)) < sl.count
		if !short && res.parseErr == nil {
			issue()
		}
		checked := res.checked
		if res.parseErr != nil {
			if *fellBack {
				// Once is a server's bug; again, within one sync, it is a
				// way to keep ncspv parsing megabytes of garbage for every
				// 100 headers it gets.
				err := errors.Join(lie(c.Server().String(), "chunk at %d does not parse, again: %v", res.start, res.parseErr), flush())
				return cm.stored(), err
			}
			*fellBack = true
			e.log.Warn("chunk reply does not parse; falling back to single headers",
				"server", c.Server().String(), "start", res.start, "err", res.parseErr)
			fhs, err := e.singleHeaders(ctx, c, res.start, 100)
			if err != nil {
				err = errors.Join(err, flush())
				return cm.stored(), err
			}
			checked = headers.Precheck(fhs, e.cfg.Params)
			short = int32(len(checked)) < sl.count
		}
		if err := e.verifyChunk(c, pend, res.start, checked); err != nil {
			err = errors.Join(err, flush())
			return cm.stored(), err
		}
		if short {
			// The server's chain moved or it withheld headers: restart the
			// pipeline from where we are.
			err := flush()
			return cm.stored(), err
		}
		if pend.unqueued() >= chunkSize {
			pend.queueRest(cm)
		}
		issue()
	}
	err := flush()
	return cm.stored(), err
}

// pending is the chain context of a sync: verified headers not yet
// committed (some of them in the committer's hands) on top of the store.
// It keeps the verified chunks as they came instead of one growing slice:
// copying that slice as it grew cost 7 % of the sync's CPU.
type pending struct {
	store  *headers.Store
	mu     sync.Mutex
	start  int32 // height of chunks[0][0]
	chunks [][]headers.VerifiedHeader
	queued int // chunks[:queued] are handed to the committer
}

func (p *pending) BlockAt(h int32) (headers.BlockInfo, bool) {
	p.mu.Lock()
	if h >= p.start {
		defer p.mu.Unlock()
		i := int(h - p.start)
		for _, c := range p.chunks {
			if i < len(c) {
				return c[i].Info, true
			}
			i -= len(c)
		}
		return headers.BlockInfo{}, false
	}
	p.mu.Unlock()
	// Below start everything is committed: start only moves up after a
	// commit.
	return p.store.BlockAt(h)
}

func (p *pending) append(vh []headers.VerifiedHeader) {
	p.mu.Lock()
	p.chunks = append(p.chunks, vh)
	p.mu.Unlock()
}

func (p *pending) unqueued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.chunks[p.queued:] {
		n += len(c)
	}
	return n
}

// queueRest hands every verified header not yet queued to the committer,
// as one batch.
func (p *pending) queueRest(cm *committer) {
	p.mu.Lock()
	// A copy: the committer may drop chunks from the front while the
	// batch is put together below.
	rest := slices.Clone(p.chunks[p.queued:])
	p.queued = len(p.chunks)
	p.mu.Unlock()
	if len(rest) == 0 {
		return
	}
	n := 0
	for _, c := range rest {
		n += len(c)
	}
	batch := make([]headers.VerifiedHeader, 0, n)
	for _, c := range rest {
		batch = append(batch, c...)
	}
	cm.jobs <- commitJob{batch: batch, chunks: len(rest)}
}

// committed drops the first n chunks, committed, from the front.
func (p *pending) committed(n int) {
	p.mu.Lock()
	for _, c := range p.chunks[:n] {
		p.start += int32(len(c))
	}
	clear(p.chunks[:n]) // let the collector have them
	p.chunks = p.chunks[n:]
	p.queued -= n
	p.mu.Unlock()
}

// commitJob is one batch for the committer: the headers of the first
// chunks of the pending run.
type commitJob struct {
	batch  []headers.VerifiedHeader
	chunks int
}

// committer stores batches of verified headers in order, one commit at a
// time; after a failed commit it drops the rest.
type committer struct {
	jobs chan commitJob
	done chan struct{}

	mu     sync.Mutex
	err    error
	count  int32
	closed bool
}

func newCommitter(store *headers.Store, pend *pending, p *progress) *committer {
	// Unbuffered: the next batch waits until the one being committed is
	// stored, a bound on memory when the disk is the slower side.
	cm := &committer{jobs: make(chan commitJob), done: make(chan struct{})}
	go func() {
		defer close(cm.done)
		for job := range cm.jobs {
			batch := job.batch
			if cm.failed() != nil {
				continue
			}
			if err := store.Connect(batch); err != nil {
				if !errors.Is(err, headers.ErrDoesNotConnect) && !errors.Is(err, headers.ErrNotMoreWork) &&
					!errors.Is(err, headers.ErrForkTooDeep) {
					err = fmt.Errorf("%w: %w", ErrStoreWrite, err) // the disk, not the server
				}
				cm.mu.Lock()
				cm.err = err
				cm.mu.Unlock()
				continue
			}
			pend.committed(job.chunks)
			cm.mu.Lock()
			cm.count += int32(len(batch))
			cm.mu.Unlock()
			p.update(batch[len(batch)-1].Info.Height)
		}
	}()
	return cm
}

func (cm *committer) failed() error {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.err
}

func (cm *committer) stored() int32 {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.count
}

// finish waits for every queued commit and returns the first error.
func (cm *committer) finish() error {
	cm.mu.Lock()
	if !cm.closed {
		cm.closed = true
		close(cm.jobs)
	}
	cm.mu.Unlock()
	<-cm.done
	return cm.failed()
}

// verifyChunk verifies headers from start on top of the pending batch. A
// first header that does not build on our block below is another branch,
// not a lie: it returns ErrDoesNotConnect and the caller looks for the fork.
func (e *Engine) verifyChunk(c *electrumx.Client, pend *pending, start int32, checked []headers.Prechecked) error {
	if len(checked) == 0 {
		return nil
	}
	prev, ok := pend.BlockAt(start - 1)
	if !ok {
		return fmt.Errorf("%w: nothing below %d", headers.ErrDoesNotConnect, start)
	}
	if checked[0].Header.PrevBlock != prev.Hash {
		return fmt.Errorf("%w: chunk at %d", headers.ErrDoesNotConnect, start)
	}
	vh, err := headers.VerifyPrechecked(pend, prev, checked, e.cfg.Now(), e.cfg.Params)
	if err != nil {
		if len(vh) > 0 {
			// What comes before a bad header (or one from the future)
			// passed every rule: keep it.
			pend.append(vh)
		}
		return blame(c.Server().String(), fmt.Sprintf("headers from %d", start), err)
	}
	pend.append(vh)
	return nil
}

// maxReorg bounds how many headers of a competing branch are held in
// memory to compare its work with ours.
const maxReorg = 10 * chunkSize

// reorgTo fetches the server's whole branch above fork and hands it to the
// store in one piece, which switches to it only if it has more work.
func (e *Engine) reorgTo(ctx context.Context, c *electrumx.Client, fork, serverTip int32) error {
	if serverTip-fork > maxReorg {
		return fmt.Errorf("competing branch of %d headers is longer than %d", serverTip-fork, maxReorg)
	}
	// Only the prechecked 80-byte headers are kept, not the AuxPoW: a
	// branch as long as maxReorg would otherwise hold about 60 MB.
	var branch []headers.Prechecked
	step := int32(e.cfg.ChunkSize)
	for from := fork + 1; from <= serverTip; from += step {
		count := min(step, serverTip-from+1)
		rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		r, err := c.BlockHeaders(rctx, from, int(count), 0)
		cancel()
		if err != nil {
			return err
		}
		fhs, err := headers.ParseFullHeadersN(r.Raw, int(count))
		if err != nil {
			r.Release()
			return lie(c.Server().String(), "branch chunk at %d: %v", from, err)
		}
		branch = append(branch, headers.Precheck(fhs, e.cfg.Params)...)
		r.Release()
		if int32(len(fhs)) < count {
			break
		}
	}
	if len(branch) == 0 {
		return nil
	}
	err := e.cfg.Store.AddPrechecked(fork+1, branch, e.cfg.Now())
	var re headers.RuleError
	if errors.As(err, &re) {
		return blame(c.Server().String(), "competing branch", err)
	}
	if err == nil {
		tip := e.cfg.Store.Tip()
		e.log.Info("switched to a branch with more work", "fork_height", fork, "height", tip.Height)
	}
	return err
}

// headerBatch asks, in one JSON-RPC batch, for the header at each height:
// in full (cp 0; T is electrumx.HexBytes) or in 80 bytes with a proof
// under cp_height cp (T is electrumx.HeaderProofJSON). errs[i] is the
// server's error for heights[i]; err a transport or context error.
func headerBatch[T any](ctx context.Context, c *electrumx.Client, heights []int32, cp int32) (res []T, errs []error, err error) {
	calls := make([]*electrumx.BatchCall, len(heights))
	res = make([]T, len(heights))
	for i, h := range heights {
		params := []any{h}
		if cp > 0 {
			params = append(params, cp)
		}
		calls[i] = &electrumx.BatchCall{Method: "blockchain.block.header", Params: params, Result: &res[i]}
	}
	if err := c.Batch(ctx, calls); err != nil {
		return nil, nil, err
	}
	errs = make([]error, len(calls))
	for i, call := range calls {
		errs[i] = call.Err
	}
	return res, errs, nil
}

// heightRange is the n heights from start.
func heightRange(start int32, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = start + int32(i)
	}
	return out
}

// singleHeaders fetches count headers one per request (in one batch), the
// request form that ElectrumX's AuxPoW split bug does not touch.
func (e *Engine) singleHeaders(ctx context.Context, c *electrumx.Client, start int32, count int) ([]*headers.FullHeader, error) {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	res, errs, err := headerBatch[electrumx.HexBytes](rctx, c, heightRange(start, count), 0)
	if err != nil {
		return nil, err
	}
	var out []*headers.FullHeader
	for i := range res {
		if errs[i] != nil {
			break // past the server's tip
		}
		fh, n, err := headers.ParseFullHeader(res[i])
		if err != nil || n != len(res[i]) {
			return nil, lie(c.Server().String(), "header %d does not parse: %v", start+int32(i), err)
		}
		out = append(out, fh)
	}
	return out, nil
}

// forkWindow is how many headers the first step of a fork search asks
// for. Most forks are a block or two deep, so one request usually finds
// it; and a reply of many headers is never one that ElectrumX 1.20 holds
// for a second, as it holds every reply under 1 KiB (a single header).
const forkWindow = 32

// findFork finds the highest height at or below from where the server's
// chain and ours agree. It asks for windows of headers going down from
// from, each twice as long as the one before, and stops at the first
// window that holds a header we share. A window holds at most what one
// sync request asks for (ChunkSize), so that its reply fits the sync
// connection's reply cap. No window goes below the anchor.
func (e *Engine) findFork(ctx context.Context, c *electrumx.Client, from int32) (int32, error) {
	base := e.cfg.Store.ForkFloor()
	hi := from
	largest := int32(max(forkWindow, e.cfg.ChunkSize))
	for size := int32(forkWindow); ; size = min(2*size, largest) {
		lo := max(base, hi-size+1)
		fork, found, err := e.scanForFork(ctx, c, lo, hi)
		if err != nil || found {
			return fork, err
		}
		if lo == base {
			return 0, fmt.Errorf("%w: the server's chain differs at our oldest header %d", headers.ErrForkTooDeep, base)
		}
		hi = lo - 1
	}
}

// scanForFork fetches the server's headers lo..hi and returns the highest
// height where the server's header is ours.
func (e *Engine) scanForFork(ctx context.Context, c *electrumx.Client, lo, hi int32) (int32, bool, error) {
	count := int(hi - lo + 1)
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	r, err := c.BlockHeaders(rctx, lo, count, 0)
	cancel()
	if err != nil {
		return 0, false, err
	}
	fhs, perr := headers.ParseFullHeadersN(r.Raw, count)
	r.Release()
	if errors.Is(perr, headers.ErrTooManyHeaders) {
		return 0, false, lie(c.Server().String(), "fork search at %d: %v", lo, perr)
	}
	if perr != nil {
		e.log.Warn("headers reply does not parse; falling back to single headers",
			"server", c.Server().String(), "start", lo, "err", perr)
		if fhs, err = e.singleHeaders(ctx, c, lo, count); err != nil {
			return 0, false, err
		}
	}
	if len(fhs) != count {
		// Its chain is shorter than it said a moment ago: a reorg or a
		// lie; either way this server is of no use for this sync.
		return 0, false, fmt.Errorf("server sent %d headers from %d, asked for %d", len(fhs), lo, count)
	}
	for i := count - 1; i >= 0; i-- {
		h := lo + int32(i)
		info, ok := e.cfg.Store.BlockAt(h)
		if !ok {
			return 0, false, fmt.Errorf("%w: block %d", headers.ErrForkTooDeep, h)
		}
		if fhs[i].BlockHash() == info.Hash {
			return h, true, nil
		}
	}
	return 0, false, nil
}

// progress logs sync progress at most every 10 seconds.
type progress struct {
	log        interface{ Info(string, ...any) }
	start, end int32
	t0, last   time.Time
}

func newProgress(log interface{ Info(string, ...any) }, start, end int32) *progress {
	now := time.Now()
	return &progress{log: log, start: start, end: end, t0: now, last: now}
}

func (p *progress) update(height int32) {
	if time.Since(p.last) < 10*time.Second {
		return
	}
	p.last = time.Now()
	p.report(height)
}

func (p *progress) report(height int32) {
	el := time.Since(p.t0).Seconds()
	pct := 100.0
	if p.end > p.start {
		pct = 100 * float64(height-p.start) / float64(p.end-p.start)
	}
	rate := 0.0
	if el > 0 {
		rate = float64(height-p.start) / el
	}
	p.log.Info("syncing headers", "height", height, "target", p.end,
		"percent", fmt.Sprintf("%.1f", pct), "headers_per_s", int(rate))
}

func (p *progress) done(height int32) {
	if height > p.start {
		p.report(height)
	}
}

// ensureAncestors gives a store anchored at a checkpoint the blocks below
// the anchor that the median time past of the next blocks needs (Core
// takes the median of the 11 blocks before a block). Each is proven
// against the checkpoint's root with a cp_height proof, so they add no
// trust. Once the chain is a window past the anchor they are not needed.
func (e *Engine) ensureAncestors(ctx context.Context, c *electrumx.Client) error {
	st, cp := e.cfg.Store, e.cfg.Checkpoint
	span := int32(e.cfg.Params.MedianTimeSpan)
	if st.Base() != cp.PeriodEnd || cp.PeriodEnd == 0 || st.Tip().Height >= cp.PeriodEnd+span {
		return nil
	}
	if _, err := st.HeaderAt(cp.PeriodEnd); err == nil {
		return nil // already fetched
	}
	low := max(0, cp.PeriodEnd-span+1)
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	proofs, errs, err := headerBatch[electrumx.HeaderProofJSON](rctx, c, heightRange(low, int(cp.PeriodEnd-low+1)), cp.Height)
	cancel()
	if err != nil {
		return err
	}
	srv := c.Server().String()
	hdrs := make([]headers.Header, len(proofs))
	for i := range proofs {
		height := low + int32(i)
		if errs[i] != nil {
			return lie(srv, "checkpointed header %d: %v", height, errs[i])
		}
		pr := proofs[i].Proof()
		if len(pr.Header) != headers.HeaderSize {
			return lie(srv, "checkpointed header %d has %d bytes", height, len(pr.Header))
		}
		if err := cp.VerifyHeaderProof(height, chainhash.DoubleHashH(pr.Header), pr.Branch, pr.Root); err != nil {
			return lie(srv, "header %d below the anchor: %v", height, err)
		}
		hdrs[i], _ = headers.ParseHeader(pr.Header)
	}
	if err := st.AddAncestors(hdrs); err != nil {
		return lie(srv, "headers below the anchor: %v", err)
	}
	e.log.Debug("stored the checkpoint anchor's ancestors", "from", low, "to", cp.PeriodEnd)
	return nil
}

// headerAt returns the 80-byte header at height: from the store, or below
// the store (under the checkpoint) from the server with a cp_height proof.
func (e *Engine) headerAt(ctx context.Context, c *electrumx.Client, height int32) (headers.Header, error) {
	h, err := e.cfg.Store.HeaderAt(height)
	if err == nil {
		return h, nil
	}
	// Under the checkpoint, a header the store lacks (below it, or the
	// anchor, whose bytes a checkpoint does not carry) is proven against
	// the checkpoint's root.
	cp := e.cfg.Checkpoint
	if height > cp.Height {
		return headers.Header{}, err
	}
	r, err := c.BlockHeader(ctx, height, cp.Height)
	if err != nil {
		return headers.Header{}, err
	}
	if len(r.Header) != headers.HeaderSize {
		return headers.Header{}, lie(c.Server().String(), "checkpointed header %d has %d bytes", height, len(r.Header))
	}
	hdr, _ := headers.ParseHeader(r.Header)
	if err := cp.VerifyHeaderProof(height, chainhash.DoubleHashH(r.Header), r.Branch, r.Root); err != nil {
		return headers.Header{}, lie(c.Server().String(), "%v", err)
	}
	return hdr, nil
}
