package spv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
)

// LookupOptions tune NameShow.
type LookupOptions struct {
	// StreamID isolates the lookup: its own Tor circuits and cache.
	StreamID string
	// AllowExpired returns an expired name instead of failing.
	AllowExpired bool
}

// NameResult is a verified name, as Namecoin Core's name_show knows it.
type NameResult struct {
	Name      []byte
	Value     []byte
	TxID      chainhash.Hash
	Vout      uint32
	Address   string
	Height    int32
	ExpiresIn int32
	Expired   bool
}

// update is a name update proven against our headers.
type update struct {
	name, value []byte
	txid        chainhash.Hash
	vout        uint32
	script      []byte
	height      int32
	pos         int
	// fresh: it has fewer confirmations than the policy asks, and was
	// chosen because no deep enough update is live.
	fresh bool
	// unproven: only the height is known. The block's header is neither
	// stored (pruned) nor under the checkpoint, so the update could not be
	// verified; enough to say that an expired name expired, not to show it.
	unproven bool
}

func (u *update) newerThan(o *update) bool {
	return o == nil || u.height > o.height || (u.height == o.height && u.pos > o.pos)
}

// Ranks of a server's answer when several are merged: a live update with
// the confirmations the policy asks beats a fresher one, which beats an
// expired one; within a rank the newest wins.
const (
	rankExpired = iota
	rankFresh
	rankLive
)

func (e *Engine) rank(u *update, tip int32) int {
	switch {
	case e.expiredAt(u.height, tip):
		return rankExpired
	case u.fresh:
		return rankFresh
	}
	return rankLive
}

// better reports whether u beats o (nil: no answer) as the lookup's answer.
func (e *Engine) better(u, o *update, tip int32) bool {
	if o == nil {
		return true
	}
	ru, ro := e.rank(u, tip), e.rank(o, tip)
	return ru > ro || (ru == ro && u.newerThan(o))
}

// expiredAt is Core's rule: a name last updated at height has expired at
// tip once height + the expiration depth is not above tip.
func (e *Engine) expiredAt(height, tip int32) bool {
	return height+e.cfg.Params.NameExpirationDepthAt(tip) <= tip
}

// outcome is what one server's answer proved.
type outcome struct {
	server electrumx.Server
	best   *update // the update chosen from this server's answer, if any
	err    error   // transport error or *LieError
}

// NameShow looks a name up, asks up to QueryServers servers over circuits
// isolated by opts.StreamID, verifies each answer against our headers and
// returns the newest verified update.
func (e *Engine) NameShow(ctx context.Context, name []byte, opts LookupOptions) (*NameResult, error) {
	if len(name) == 0 || len(name) > MaxNameLength {
		// No such name can be registered: Core answers that it never
		// existed, without asking anyone.
		return nil, &NameError{Kind: NameNeverExisted, Name: name}
	}
	if err := e.ensureSynced(ctx); err != nil {
		return nil, err
	}
	tip := e.cfg.Store.Tip()
	if r, err, ok := e.cache.get(opts.StreamID, name, tip.Hash); ok && !e.cfg.NoCache {
		return e.finish(name, r, err, tip.Height, opts)
	}

	servers := e.servers()
	k := min(e.cfg.QueryServers, len(servers))
	if good := e.undemoted(servers); good > 0 {
		// A server that lied or stalled is of no use to a lookup while
		// another is: asking it would only make the caller wait.
		k = min(k, good)
	}
	if e.bgCtx.Err() != nil {
		return nil, errors.New("ncspv is shutting down")
	}
	l := &lookup{e: e, name: name, stream: opts.StreamID, tip: tip, want: k, deadline: time.Now().Add(e.cfg.LookupDeadline),
		results: make(chan outcome, k), answered: make(chan struct{}), done: make(chan struct{})}
	// The servers are asked in the background, bounded by
	// BackgroundLookup rather than by the caller: when the caller gives
	// up (ncprop279 after 1.5 s), the answer is still verified and
	// cached, and Tor's retry of the stream finds it at once.
	e.bgWG.Add(1)
	go l.run(servers[:k], NameScriptHash(name))
	deadline := time.NewTimer(e.cfg.LookupDeadline)
	defer deadline.Stop()
	select {
	case <-l.done: // every server asked has answered
	case <-l.answered:
		// One has; the others get until the deadline.
		select {
		case <-l.done:
		case <-deadline.C:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	best, lookupErr, answered := l.result()
	if !answered {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		<-l.done // nothing answered, and all have finished
		best, lookupErr, _ = l.result()
	}
	if lookupErr != nil {
		var ne *NameError
		if !errors.As(lookupErr, &ne) {
			return nil, lookupErr
		}
	}
	return e.finish(name, best, lookupErr, tip.Height, opts)
}

// lookup is one NameShow's servers, asked in parallel. It outlives a
// caller that gave up: what its servers prove is merged and cached as it
// arrives, so the newest verified answer is there for the next caller.
type lookup struct {
	e      *Engine
	name   []byte
	stream string
	tip    headers.Tip
	want   int
	// deadline is when the lookup answered with what it had.
	deadline time.Time

	results  chan outcome
	answered chan struct{} // closed at the first answer that verified
	done     chan struct{} // closed when every server has finished

	mu        sync.Mutex
	best      *update
	nAnswered int
	lied      int
	errs      []error
	finished  bool
}

func (l *lookup) run(servers []electrumx.Server, sh string) {
	e := l.e
	defer e.bgWG.Done()
	ctx, cancel := context.WithTimeout(e.bgCtx, e.cfg.BackgroundLookup)
	defer cancel()
	for _, s := range servers {
		go func() { l.results <- e.askServer(ctx, s, l.name, sh, l.stream, l.tip) }()
	}
	answeredOnce := false
	for range servers {
		o := <-l.results
		l.add(o, ctx)
		if o.err == nil && !answeredOnce {
			answeredOnce = true
			close(l.answered)
		}
	}
	l.mu.Lock()
	l.finished = true
	l.mu.Unlock()
	close(l.done)
}

// add merges one server's outcome and caches the merged answer.
func (l *lookup) add(o outcome, ctx context.Context) {
	e := l.e
	var le *LieError
	switch {
	case errors.As(o.err, &le):
		e.demote(o.server, o.err, true)
	case o.err != nil && stalled(o.err) && ctx.Err() == nil:
		e.demoteStalled(o.server, o.err)
	case o.err == nil && time.Now().After(l.deadline) && l.answeredBefore():
		// Another server answered in time: this one made the caller
		// wait, or go without it. Lookups ask the others first now.
		e.demoteStalled(o.server, fmt.Errorf("answered after the %v lookup deadline", e.cfg.LookupDeadline))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case le != nil:
		l.lied++
		l.errs = append(l.errs, o.err)
		return
	case o.err != nil:
		l.errs = append(l.errs, fmt.Errorf("%s: %w", o.server, o.err))
		return
	}
	l.nAnswered++
	if o.best != nil && e.better(o.best, l.best, l.tip.Height) {
		l.best = o.best
	}
	var err error
	if l.best == nil {
		err = &NameError{Kind: NameNeverExisted, Name: l.name}
	}
	e.cache.put(l.stream, l.name, l.tip.Hash, l.best, err)
}

// answeredBefore reports whether a server has answered already.
func (l *lookup) answeredBefore() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nAnswered > 0
}

// result is the merged answer so far: the newest verified update (nil
// and a NameError when the servers that answered know none), or, when no
// server has answered, why not (once all have finished), and whether any
// server has answered.
func (l *lookup) result() (*update, error, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nAnswered > 0 {
		if l.best == nil {
			return nil, &NameError{Kind: NameNeverExisted, Name: l.name}, true
		}
		return l.best, nil, true
	}
	if !l.finished {
		return nil, nil, false
	}
	if l.lied > 0 && l.lied == l.want {
		return nil, fmt.Errorf("%w: %w", ErrAllServersLied, errors.Join(l.errs...)), false
	}
	return nil, noServer(l.errs), false
}

// finish turns a verified update into a result at tip, applying expiry.
func (e *Engine) finish(name []byte, u *update, err error, tip int32, opts LookupOptions) (*NameResult, error) {
	if err != nil {
		return nil, err
	}
	if u.unproven {
		if e.expiredAt(u.height, tip) && !opts.AllowExpired {
			return nil, &NameError{Kind: NameExpired, Name: name}
		}
		return nil, fmt.Errorf("%w: its newest update is at height %d", ErrUnprovable, u.height)
	}
	expiresIn := u.height + e.cfg.Params.NameExpirationDepthAt(tip) - tip
	r := &NameResult{
		Name:      u.name,
		Value:     u.value,
		TxID:      u.txid,
		Vout:      u.vout,
		Address:   ScriptAddress(u.script, e.cfg.Addresses),
		Height:    u.height,
		ExpiresIn: expiresIn,
		Expired:   expiresIn <= 0,
	}
	if r.Expired && !opts.AllowExpired {
		return nil, &NameError{Kind: NameExpired, Name: name}
	}
	return r, nil
}

// askServer gets and verifies one server's newest deep-enough update: one
// round trip with get_value_proof (protocol 1.4.3), else get_history and
// then one batch for the transaction and its proof.
func (e *Engine) askServer(ctx context.Context, s electrumx.Server, name []byte, sh, streamID string, tip headers.Tip) outcome {
	out := outcome{server: s}
	g := e.cfg.Router.ForAnonymous(s.String())
	if streamID != "" {
		g = e.cfg.Router.ForStream(streamIsolation(streamID, s))
	}
	get := e.cfg.Pool.Get
	if streamID != "" {
		get = e.cfg.Pool.GetNew // a stream seen for the first time takes a spare circuit
	}
	c, err := get(ctx, s, g.Key, electrumx.DialFunc(g.Dial))
	if err != nil {
		out.err = err
		return out
	}
	c.SetMaxLine(lookupLineLimit)
	if c.HasValueProof() {
		out.best, out.err = e.viaValueProof(ctx, c, name, sh, tip)
	} else {
		out.best, out.err = e.viaHistory(ctx, c, name, sh, tip)
	}
	if errors.Is(out.err, electrumx.ErrBadReply) || errors.Is(out.err, electrumx.ErrReplyTooLarge) || errors.Is(out.err, electrumx.ErrProtocol) {
		// A reply that cannot be what the protocol says (a merkle
		// position of 2^70, say) is the server's doing, not the network's.
		out.err = lie(s.String(), "%v", out.err)
	}
	return out
}

// candidate is an update of the name that a server listed.
type candidate struct {
	height int32
	txid   chainhash.Hash
}

// choose picks, from a server's updates of a name (newest first), the one
// to prove, as Core would answer at tip under the confirmation policy:
// the newest with the confirmations the policy asks, unless it has expired
// or there is none; then the newest fresher one, so that a renewal close
// to expiry or a new registration is never called expired or missing.
// Updates Core ignores (historic bugs) and ones above our tip or
// unconfirmed are passed over. It returns an index, or -1, and whether the
// pick is fresh.
func (e *Engine) choose(cands []candidate, tip int32) (int, bool) {
	deepest := tip - e.cfg.Confirmations + 1 // highest height with enough confirmations
	deep, fresh := -1, -1
	for i, c := range cands {
		if c.height <= 0 || c.height > tip || e.cfg.Params.IgnoresNameTx(c.txid, c.height) {
			continue
		}
		if c.height > deepest {
			if fresh < 0 {
				fresh = i
			}
			continue
		}
		deep = i
		break
	}
	switch {
	case deep >= 0 && !e.expiredAt(cands[deep].height, tip):
		return deep, false
	case fresh >= 0:
		return fresh, true
	}
	return deep, false
}

// provable reports whether a header at height can be had: stored, or
// under the checkpoint (a cp_height proof).
func (e *Engine) provable(height int32) bool {
	if _, err := e.cfg.Store.HeaderAt(height); err == nil {
		return true
	}
	return height <= e.cfg.Checkpoint.Height
}

// streamIsolation keys circuits by stream ID and server, so that the k
// servers of one lookup go over different circuits.
func streamIsolation(streamID string, s electrumx.Server) string {
	return streamID + "\x00" + s.String()
}

// maxProofRefetch bounds the extra get_value_proof calls a lookup makes
// when the deep entry of a bounded answer is one Core ignores.
const maxProofRefetch = 3

// valueProofEntries asks for the updates that can matter: with cp_height
// at the deepest height the policy takes, ElectrumX returns the updates
// above it and the first at or below it, and stops. Without cp_height it
// returns every update back to the first gap longer than the expiration
// depth between two of them: for a name always renewed in time, its whole
// history (258 entries, 342 KB for a regtest name renewed every 20 blocks,
// against 2.4 KB). A server that refuses the height (its chain may be
// shorter than ours) is asked without it.
func (e *Engine) valueProofEntries(ctx context.Context, c *electrumx.Client, sh string, tip headers.Tip) ([]electrumx.ValueProofEntry, error) {
	cp := tip.Height - e.cfg.Confirmations + 1
	if cp < 1 {
		return e.valueProofBatch(ctx, c, sh, 0, tip)
	}
	var out []electrumx.ValueProofEntry
	for i := range maxProofRefetch + 1 {
		var entries []electrumx.ValueProofEntry
		var err error
		if i == 0 {
			entries, err = e.valueProofBatch(ctx, c, sh, cp, tip)
		} else {
			entries, err = c.NameGetValueProof(ctx, sh, cp)
		}
		var re *electrumx.RPCError
		if errors.As(err, &re) && out == nil {
			return c.NameGetValueProof(ctx, sh, 0)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, entries...)
		// The answer stops at its first entry at or below cp. When Core
		// ignores that one (a historic bug), the update before it counts.
		if len(entries) == 0 {
			break
		}
		last := entries[len(entries)-1]
		tx, n, perr := headers.ParseTx(last.Tx)
		if last.Height > cp || perr != nil || n != len(last.Tx) || !e.cfg.Params.IgnoresNameTx(tx.TxID(), last.Height) {
			break
		}
		if cp = last.Height - 1; cp < 1 {
			break
		}
	}
	return out, nil
}

// lookupLineLimit caps a lookup connection's reply lines. A bounded
// get_value_proof answer and its headers take kilobytes; a whole history
// (when a server refuses cp_height) of 1,500 updates fits.
const lookupLineLimit = 2 << 20

// Headers a lookup asks for in its batch: our newest ones, as few as make
// 1 KiB of hex (one mainnet header, about 3.3 KB; three or four of
// regtest's 294 bytes), so that the batch's reply is never under 1 KiB,
// which ElectrumX would hold for up to a second; and up to lookupLookahead
// new ones, which are verified and stored, so that a lookup brings the
// headers it needs on its own circuit instead of waking the sync's at the
// same instant.
const (
	lookupLookahead  = 8
	lookupFillerHex  = 1100 // bytes of header hex that put a reply past 1 KiB
	maxHeadersFiller = 4
)

// headersBelow is how many of our newest headers make lookupFillerHex,
// by the size of the last header a lookup saw (unknown: the most).
func (e *Engine) headersBelow() int32 {
	size := e.headerSize.Load()
	if size <= 0 {
		return maxHeadersFiller
	}
	return int32(min(maxHeadersFiller, (lookupFillerHex+2*size-1)/(2*size)))
}

// valueProofBatch is get_value_proof with cp_height cp, sent in one batch
// with our newest headers and the ones after them.
func (e *Engine) valueProofBatch(ctx context.Context, c *electrumx.Client, sh string, cp int32, tip headers.Tip) ([]electrumx.ValueProofEntry, error) {
	call, decode, err := c.ValueProofCall(sh, cp)
	if err != nil {
		return nil, err
	}
	if err := e.batchWithHeaders(ctx, c, []*electrumx.BatchCall{call}, tip); err != nil {
		return nil, err
	}
	if call.Err != nil {
		return nil, call.Err
	}
	return decode()
}

// batchWithHeaders sends calls in one batch with our newest headers and
// the ones after them, and stores those that verify.
func (e *Engine) batchWithHeaders(ctx context.Context, c *electrumx.Client, calls []*electrumx.BatchCall, tip headers.Tip) error {
	start := max(tip.Height-e.headersBelow()+1, 0)
	hc, hdecode := electrumx.HeadersCall(start, int(tip.Height-start+1)+lookupLookahead)
	if err := c.Batch(ctx, append(calls, hc)); err != nil {
		return err
	}
	if hc.Err != nil {
		return nil
	}
	raw, err := hdecode()
	if err == nil {
		err = e.takeHeaders(c, start, raw, tip)
	}
	return err
}

// takeHeaders stores the headers past our tip that came with a lookup,
// when the server's chain holds our tip. They are verified as any others;
// what does not connect (another branch, or the tip moved meanwhile) is
// left to the sync. Headers that do not parse, or more than were asked
// for, or that break a rule, are a lie.
func (e *Engine) takeHeaders(c *electrumx.Client, start int32, raw []byte, tip headers.Tip) error {
	srv := c.Server().String()
	n := int(tip.Height-start+1) + lookupLookahead
	fhs, err := headers.ParseFullHeadersN(raw, n)
	if err != nil {
		return lie(srv, "headers from %d in a lookup: %v", start, err)
	}
	at := int(tip.Height - start)
	if len(fhs) > at {
		e.headerSize.Store(int64(len(fhs[at].Serialize())))
	}
	if len(fhs) <= at+1 || fhs[at].BlockHash() != tip.Hash {
		return nil
	}
	err = e.cfg.Store.AddHeaders(tip.Height+1, fhs[at+1:], e.cfg.Now())
	var re headers.RuleError
	switch {
	case errors.As(err, &re) && !errors.Is(err, headers.ErrTimeTooNew):
		return lie(srv, "headers after %d in a lookup: %v", tip.Height, err)
	case err == nil:
		e.log.Debug("a lookup brought new headers", "server", srv, "height", e.cfg.Store.Tip().Height)
	}
	return nil
}

func (e *Engine) viaValueProof(ctx context.Context, c *electrumx.Client, name []byte, sh string, tip headers.Tip) (*update, error) {
	entries, err := e.valueProofEntries(ctx, c, sh, tip)
	if err != nil {
		return nil, err
	}
	// Newest first; equal heights keep the server's (newest-first) order.
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Height > entries[j].Height })
	cands := make([]candidate, len(entries))
	for i, en := range entries {
		cands[i].height = en.Height
		if tx, n, err := headers.ParseTx(en.Tx); err == nil && n == len(en.Tx) {
			cands[i].txid = tx.TxID() // one that does not parse fails verification
		}
	}
	i, fresh := e.choose(cands, tip.Height)
	if i < 0 {
		return nil, nil
	}
	en := &entries[i]
	if !e.provable(en.Height) {
		return &update{height: en.Height, unproven: true}, nil
	}
	u, err := e.verifyUpdate(ctx, c, name, en.Tx, nil, en.Height, &en.Merkle)
	if u != nil {
		u.fresh = fresh
	}
	return u, err
}

func (e *Engine) viaHistory(ctx context.Context, c *electrumx.Client, name []byte, sh string, tipInfo headers.Tip) (*update, error) {
	tip := tipInfo.Height
	var hist []electrumx.HistoryItem
	hcall := &electrumx.BatchCall{Method: "blockchain.scripthash.get_history", Params: []any{sh}, Result: &hist}
	if err := e.batchWithHeaders(ctx, c, []*electrumx.BatchCall{hcall}, tipInfo); err != nil {
		return nil, err
	}
	if hcall.Err != nil {
		return nil, hcall.Err
	}
	cands := make([]candidate, len(hist))
	for i := range hist { // chain order, newest last: reversed
		h := &hist[len(hist)-1-i]
		cands[i] = candidate{height: h.Height, txid: chainhash.Hash(h.TxHash)}
	}
	i, fresh := e.choose(cands, tip)
	if i < 0 {
		return nil, nil
	}
	pick := &hist[len(hist)-1-i]
	if !e.provable(pick.Height) {
		return &update{height: pick.Height, unproven: true}, nil
	}
	txid := chainhash.Hash(pick.TxHash)
	var raw electrumx.HexBytes
	var mj struct {
		BlockHeight int32            `json:"block_height"`
		Merkle      []electrumx.Hash `json:"merkle"`
		Pos         int              `json:"pos"`
	}
	calls := []*electrumx.BatchCall{
		{Method: "blockchain.transaction.get", Params: []any{txid.String()}, Result: &raw},
		{Method: "blockchain.transaction.get_merkle", Params: []any{txid.String(), pick.Height}, Result: &mj},
	}
	// With headers too: a name transaction and its proof can be under
	// 1 KiB, which ElectrumX would hold.
	if err := e.batchWithHeaders(ctx, c, calls, tipInfo); err != nil {
		return nil, err
	}
	for _, call := range calls {
		if call.Err != nil {
			return nil, lie(c.Server().String(), "history entry %s at %d: %v", txid, pick.Height, call.Err)
		}
	}
	mp := &electrumx.MerkleProof{BlockHeight: mj.BlockHeight, Pos: mj.Pos}
	for _, h := range mj.Merkle {
		mp.Merkle = append(mp.Merkle, chainhash.Hash(h))
	}
	if mp.BlockHeight != pick.Height {
		return nil, lie(c.Server().String(), "merkle proof for height %d, history says %d", mp.BlockHeight, pick.Height)
	}
	u, err := e.verifyUpdate(ctx, c, name, raw, &txid, pick.Height, mp)
	if u != nil {
		u.fresh = fresh
	}
	return u, err
}

// verifyUpdate proves a name transaction: its id (if the server named
// one), its merkle branch against our header at height, the Namecoin
// transaction version and exactly one name output, an update of name.
func (e *Engine) verifyUpdate(ctx context.Context, c *electrumx.Client, name, raw []byte, txid *chainhash.Hash, height int32, mp *electrumx.MerkleProof) (*update, error) {
	srv := c.Server().String()
	tx, n, err := headers.ParseTx(raw)
	if err != nil || n != len(raw) {
		return nil, lie(srv, "transaction at %d does not parse: %v", height, err)
	}
	id := tx.TxID()
	if txid != nil && id != *txid {
		return nil, lie(srv, "transaction %v does not match its id %v", id, *txid)
	}
	hdr, err := e.headerAt(ctx, c, height)
	if err != nil {
		var le *LieError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, lie(srv, "no header of ours at height %d: %v", height, err)
	}
	if err := checkMerkleProof(id, mp.Merkle, mp.Pos, hdr.MerkleRoot); err != nil {
		return nil, lie(srv, "transaction %v at %d: %v", id, height, err)
	}
	// On a sampled chain, the block a proof rests on is checked in full.
	if err := e.checkBlockWork(ctx, c, height); err != nil {
		return nil, err
	}
	if tx.Version != headers.NamecoinTxVersion {
		return nil, lie(srv, "transaction %v has version %#x, not a name transaction", id, tx.Version)
	}
	var found *update
	count := 0
	for i, out := range tx.TxOut {
		op, ok := ParseNameScript(out.PkScript)
		if !ok {
			continue
		}
		count++
		if op.IsAnyUpdate() && bytes.Equal(op.Name, name) {
			found = &update{name: op.Name, value: op.Value, txid: id, vout: uint32(i),
				script: op.Address, height: height, pos: mp.Pos}
		}
	}
	switch {
	case count != 1:
		return nil, lie(srv, "transaction %v has %d name outputs", id, count)
	case found == nil:
		return nil, lie(srv, "transaction %v does not update the requested name", id)
	}
	return found, nil
}

// checkMerkleProof folds a transaction's branch to root. It refuses a
// branch longer than 30 or an index beyond it, inner nodes that parse as a
// 64-byte transaction (the forged-proof attack on SPV), and phantom
// positions: a level with an odd count pairs its last node with itself,
// so a transaction under that node also folds to the root from a position
// past the block's last (CVE-2012-2459's shape). The real node is always
// the left one, so a right child equal to its sibling is a phantom; a
// block holding two equal subtrees has duplicate transactions, which Core
// refuses.
func checkMerkleProof(txid chainhash.Hash, branch []chainhash.Hash, pos int, root chainhash.Hash) error {
	if len(branch) > 30 {
		return fmt.Errorf("merkle branch of %d hashes", len(branch))
	}
	if pos < 0 || pos >= 1<<len(branch) {
		return fmt.Errorf("position %d beyond a branch of %d", pos, len(branch))
	}
	h := txid
	idx := pos
	var buf [64]byte
	for level, b := range branch {
		if idx&1 != 0 && b == h {
			return fmt.Errorf("position %d is a phantom: its node at level %d is a duplicated last node", pos, level)
		}
		if idx&1 != 0 {
			copy(buf[:32], b[:])
			copy(buf[32:], h[:])
		} else {
			copy(buf[:32], h[:])
			copy(buf[32:], b[:])
		}
		if _, n, err := headers.ParseTx(buf[:]); err == nil && n == 64 {
			return errors.New("an inner merkle node parses as a transaction")
		}
		h = chainhash.DoubleHashH(buf[:])
		idx >>= 1
	}
	if h != root {
		return fmt.Errorf("merkle branch leads to %v, our header has %v", h, root)
	}
	return nil
}

// resultCache keeps verified answers per stream ID until the tip changes.
// It never serves one stream ID's answer to another; lookups without a
// stream ID share one cache of their own, as they share their circuits.
type resultCache struct {
	mu      sync.Mutex
	entries map[string]map[string]cacheEntry
}

type cacheEntry struct {
	tip chainhash.Hash
	u   *update
	err error
}

// The cache's bounds: names per stream, and streams (Tor opens one per
// connection a user makes; none of them may grow memory without end).
const (
	maxCachePerStream = 1000
	maxCachedStreams  = 4096
)

func newResultCache() *resultCache {
	return &resultCache{entries: map[string]map[string]cacheEntry{}}
}

func (c *resultCache) get(stream string, name []byte, tip chainhash.Hash) (*update, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[stream][string(name)]
	if !ok || e.tip != tip {
		return nil, nil, false
	}
	return e.u, e.err, true
}

func (c *resultCache) put(stream string, name []byte, tip chainhash.Hash, u *update, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.entries[stream]
	if m == nil && len(c.entries) >= maxCachedStreams {
		for k := range c.entries { // any one: streams are many and short-lived
			delete(c.entries, k)
			break
		}
	}
	if m == nil || len(m) >= maxCachePerStream {
		m = map[string]cacheEntry{}
		c.entries[stream] = m
	}
	m[string(name)] = cacheEntry{tip: tip, u: u, err: err}
}
