// Package spv is the ncspv engine: it syncs verified headers from ElectrumX
// servers into the header store, and answers name lookups with values it
// proves against those headers, asking several servers over isolated Tor
// circuits and keeping the newest answer that verifies.
package spv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/tor"
)

// Config wires an Engine.
type Config struct {
	Params     *headers.Params
	Addresses  AddressParams
	Checkpoint checkpoints.Checkpoint
	Store      *headers.Store
	Servers    []electrumx.Server
	Router     *tor.Router
	Pool       *electrumx.Pool

	// Confirmations a name update needs (default 12, as Electrum-NMC).
	Confirmations int32
	// QueryServers is how many servers a lookup asks (default 2).
	QueryServers int
	// CatchUpAfter: when not following the tip, a lookup first syncs if
	// the last sync is older than this (default 1 minute).
	CatchUpAfter time.Duration
	// Pipeline is how many header chunks are requested ahead (default 4).
	Pipeline int
	// ChunkSize is how many headers one request asks for (default
	// DefaultChunkSize, at most 2016). A full 2016-header AuxPoW chunk is
	// several MB of hex (twice that once ElectrumX 1.20 pads it).
	ChunkSize int
	// NoCache turns the per-stream answer cache off (benchmarks).
	NoCache bool
	// RequestTimeout bounds one sync request (default 60 s: a chunk can be
	// 7 MB over Tor).
	RequestTimeout time.Duration
	// TipTimeout bounds a sync's first request, the tip subscription
	// (default DefaultTipTimeout, at most RequestTimeout): its reply is a
	// header, so a server that holds it longer has stalled, and the next
	// server is asked instead of the first sync waiting a chunk's time.
	TipTimeout time.Duration
	// DemoteFor is how long a server caught lying is avoided (default 30 min).
	DemoteFor time.Duration
	// LookupDeadline is when a lookup answers with the newest verified
	// answer in hand instead of waiting for the slowest server (default
	// DefaultLookupDeadline, under ncprop279's 1.5 s).
	LookupDeadline time.Duration
	// BackgroundLookup bounds a lookup whose caller gave up, which goes on
	// to cache its answer for the caller's retry (default 60 s).
	BackgroundLookup time.Duration
	// SampledSync: a catch-up of more than two retarget periods takes
	// 80-byte headers and checks the proof of work of a random sample, the
	// newest period and every block a name proof uses before answering
	// (docs/sampled-sync.md).
	SampledSync bool
	// NoFullVerify leaves a sampled chain sampled: without it the rest of
	// its proof of work is checked in the background after a sync.
	NoFullVerify bool
	// SpareCircuits is how many connections per server, each on a fresh
	// circuit of its own, are kept ready for stream IDs not seen before
	// (default 2; negative: none). They are opened only after lookups.
	SpareCircuits int

	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultLookupDeadline leaves ncprop279 (which gives up after 1.5 s) and
// ncdns (1.5 s) time to pass the answer on.
const DefaultLookupDeadline = 1200 * time.Millisecond

// Engine syncs headers and answers lookups. Safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	syncMu sync.Mutex // one sync at a time

	mu          sync.Mutex
	lastSync    time.Time
	serverTip   int32
	synced      bool
	warning     string // State.Warning
	demotedTill map[string]time.Time

	cache *resultCache
	// headerSize is the size of the last full header a lookup saw, for
	// how many a lookup's batch takes to pass 1 KiB.
	headerSize atomic.Int64

	// Background catch-ups are owned by the engine and end with Close.
	bgCtx      context.Context
	bgCancel   context.CancelFunc
	bgWG       sync.WaitGroup
	catchingUp bool
	following  bool // Follow is running: keep the sync connections

	// garbling: servers that garbled an 80-byte header chunk.
	garbling map[string]int // garbleNone, garbleYield or garbleSingles
	// workChecked: heights in the gap of unchecked headers whose proof of
	// work was checked in full (samples, name-proof blocks), by hash.
	workChecked map[int32]chainhash.Hash
	verifying   bool // the background full verification is running
	// fullSizes are the sizes of the full headers sampled, for requests
	// sized to ElectrumX's padding.
	fullSizes struct {
		n          int
		sum, sumSq float64
	}
	samples int // how many headers the last passed sample drew
}

// DefaultTipTimeout is Config.TipTimeout's default: a few round trips
// over a slow Tor circuit and ElectrumX's hold of small replies (1 s),
// several times over.
const DefaultTipTimeout = 20 * time.Second

// New checks cfg and makes an engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Params == nil || cfg.Store == nil:
		return nil, errors.New("spv: params and store are required")
	case cfg.Router == nil || cfg.Pool == nil:
		return nil, errors.New("spv: a router and a connection pool are required")
	case len(cfg.Servers) == 0:
		return nil, errors.New("spv: no ElectrumX servers configured")
	}
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = 12
	}
	if cfg.QueryServers <= 0 {
		cfg.QueryServers = 2
	}
	if cfg.CatchUpAfter <= 0 {
		cfg.CatchUpAfter = time.Minute
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = 4
	}
	if cfg.ChunkSize <= 0 || cfg.ChunkSize > chunkSize {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.TipTimeout <= 0 {
		cfg.TipTimeout = DefaultTipTimeout
	}
	cfg.TipTimeout = min(cfg.TipTimeout, cfg.RequestTimeout)
	if cfg.DemoteFor <= 0 {
		cfg.DemoteFor = 30 * time.Minute
	}
	if cfg.LookupDeadline <= 0 {
		cfg.LookupDeadline = DefaultLookupDeadline
	}
	if cfg.BackgroundLookup <= 0 {
		cfg.BackgroundLookup = 60 * time.Second
	}
	if cfg.SpareCircuits == 0 {
		cfg.SpareCircuits = 2
	}
	if cfg.SpareCircuits > 0 && cfg.Pool.SpareDial == nil {
		proxy := cfg.Router.Proxy
		cfg.Pool.Spares = cfg.SpareCircuits
		cfg.Pool.SpareDial = func() electrumx.DialFunc { return electrumx.DialFunc(proxy.Dialer(tor.Fresh())) }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bgCtx, bgCancel := context.WithCancel(context.Background())
	return &Engine{
		cfg:         cfg,
		log:         log.With("subsys", "SYNC"),
		demotedTill: map[string]time.Time{},
		garbling:    map[string]int{},
		workChecked: map[int32]chainhash.Hash{},
		cache:       newResultCache(),
		bgCtx:       bgCtx,
		bgCancel:    bgCancel,
	}, nil
}

// Close stops background work and waits for it.
func (e *Engine) Close() {
	e.bgCancel()
	e.bgWG.Wait()
}

// State is what the engine knows about the chain.
type State struct {
	Height       int32
	TipHash      string
	ServerHeight int32
	Synced       bool
	LastSync     time.Time
	// Warning is for the user (getblockchaininfo's warnings): today only
	// ErrHeaderFromFuture's, while the clock keeps the chain short.
	Warning string
	// Verification is how far the chain's proof of work is checked:
	// "fully verified", "sampled" (a random sample, the newest period and
	// the blocks name proofs use; the rest in the background) or
	// "unverified" (80-byte headers whose sample is still to be checked).
	Verification string
	// VerifiedHeight is the height up to which every header's proof of
	// work is checked.
	VerifiedHeight int32
	// Samples is how many headers the last passed sample drew since the
	// engine started (0 if none).
	Samples int
}

// State returns the current chain state.
func (e *Engine) State() State {
	tip := e.cfg.Store.Tip()
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.cfg.Store.Verification()
	return State{Height: tip.Height, TipHash: tip.Hash.String(), ServerHeight: e.serverTip,
		Synced: e.synced, LastSync: e.lastSync, Warning: e.warning,
		Verification: v.Mode(), VerifiedHeight: v.VerifiedHeight(tip.Height), Samples: e.samples}
}

// Demoted lists the servers currently avoided for lying.
func (e *Engine) Demoted() []string {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for s, till := range e.demotedTill {
		if now.Before(till) {
			out = append(out, s)
		}
	}
	return out
}

// servers returns the configured servers, those not demoted first, in a
// random order so that load spreads.
func (e *Engine) servers() []electrumx.Server {
	now := e.cfg.Now()
	var good, bad []electrumx.Server
	e.mu.Lock()
	for _, s := range e.cfg.Servers {
		if now.Before(e.demotedTill[s.String()]) {
			bad = append(bad, s)
		} else {
			good = append(good, s)
		}
	}
	e.mu.Unlock()
	rand.Shuffle(len(good), func(i, j int) { good[i], good[j] = good[j], good[i] })
	return append(good, bad...)
}

// undemoted counts the servers at the front of list (as servers orders
// them) that are not demoted.
func (e *Engine) undemoted(list []electrumx.Server) int {
	n := 0
	for _, s := range list {
		if e.isDemoted(s) {
			break
		}
		n++
	}
	return n
}

// demoteStalled avoids a server that did not answer in time, as one that
// lied, and says so by name: a stalled server leaves no other trace.
func (e *Engine) demoteStalled(s electrumx.Server, err error) {
	e.avoid(s)
	e.log.Warn("server stalled; asking the others first", "server", s.String(), "err", err)
}

// avoid puts s last for DemoteFor.
func (e *Engine) avoid(s electrumx.Server) {
	e.mu.Lock()
	e.demotedTill[s.String()] = e.cfg.Now().Add(e.cfg.DemoteFor)
	e.mu.Unlock()
}

func (e *Engine) isDemoted(s electrumx.Server) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Now().Before(e.demotedTill[s.String()])
}

// demote avoids a server that lied, for DemoteFor. The reason for a
// lookup's lie names transactions or heights of the looked-up name, which
// the logs keep to debug level, like the name itself.
func (e *Engine) demote(s electrumx.Server, reason error, inLookup bool) {
	e.avoid(s)
	if inLookup {
		e.log.Warn("server demoted: its proof for a name lookup failed verification", "server", s.String())
		e.log.Debug("server demoted", "server", s.String(), "reason", reason)
		return
	}
	e.log.Warn("server demoted", "server", s.String(), "reason", reason)
}

// stalled reports a server that did not answer in time (its handshake or
// a request), as opposed to one that refused or broke the connection.
func stalled(err error) bool {
	return errors.Is(err, electrumx.ErrStalled) || errors.Is(err, context.DeadlineExceeded)
}

// syncConn returns the sync connection to s (sync's own isolation group),
// its reply lines capped at what the sync's largest request can honestly
// take.
func (e *Engine) syncConn(ctx context.Context, s electrumx.Server) (*electrumx.Client, error) {
	g := e.cfg.Router.ForSync()
	c, err := e.cfg.Pool.Get(ctx, s, g.Key, electrumx.DialFunc(g.Dial))
	if err == nil {
		c.SetMaxLine(e.syncLineLimit())
	}
	return c, err
}

// maxAvgHeaderHex is the most hex a sync reply may spend per header on
// average: 4 KB of header, more than twice the largest AuxPoW header seen
// on mainnet and 2.4 times the average (1.67 KB). ElectrumX 1.20's padding
// to a power of two does not count: it is dropped as the hex is read.
const maxAvgHeaderHex = 8 << 10

// syncLineLimit caps a sync connection's reply lines: the most headers
// one sync request asks for (ChunkSize) at maxAvgHeaderHex each, and never
// under 1 MiB.
func (e *Engine) syncLineLimit() int {
	most := max(e.cfg.ChunkSize, forkWindow)
	return min(max(most*maxAvgHeaderHex+64<<10, 1<<20), electrumx.DefaultMaxLine)
}

// Sync catches the header store up with the servers: it syncs from up to
// QueryServers servers (so that one lagging or lying server cannot keep a
// better chain from us), trying further servers while none has succeeded.
func (e *Engine) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	var errs []error
	var future error
	var yielded []electrumx.Server // gave way after garbling 80-byte headers
	ok := 0
	// Servers are connected to a few at a time, and synced with in the
	// order they answer: one that stalls (or a Tor still without
	// circuits) holds up no other. The first sync ends within two
	// handshake timeouts when none answers.
	servers := e.servers()
	type dialed struct {
		s   electrumx.Server
		err error
	}
	answered := make(chan dialed, len(servers))
	started := 0
	// Demoted servers (last in the list) are dialed only once every other
	// has failed: one that lied or stalled is left alone for DemoteFor,
	// not asked again on every sync.
	limit := e.undemoted(servers)
	if limit == 0 {
		limit = len(servers)
	}
	dialNext := func() {
		if started == limit {
			return
		}
		s := servers[started]
		started++
		go func() {
			_, err := e.syncConn(ctx, s)
			answered <- dialed{s, err}
		}()
	}
	for range min(limit, syncWave(e.cfg.QueryServers)) {
		dialNext()
	}
	slow := time.NewTimer(slowConnectNotice)
	defer slow.Stop()
	for finished := 0; finished < started && ok < e.cfg.QueryServers; finished++ {
		var d dialed
		select {
		case d = <-answered:
		case <-slow.C:
			e.log.Info("no ElectrumX server has answered yet; waiting for Tor (right after boot it may still be connecting to the network)",
				"waited", slowConnectNotice.String())
			d = <-answered
		case <-ctx.Done():
			return ctx.Err()
		}
		dialNext()
		s, err := d.s, d.err
		if err == nil {
			err = e.syncWith(ctx, s)
		}
		if errors.Is(err, ErrHeaderFromFuture) {
			// Not the server's fault, and what came before that header
			// is stored: synced as far as our clock allows.
			future = err
			e.log.Warn("sync stopped below a header dated ahead of this computer's clock; is the clock right?",
				"height", e.cfg.Store.Tip().Height, "err", err)
		}
		if err == nil || errors.Is(err, errServerBehind) || errors.Is(err, ErrHeaderFromFuture) {
			ok++
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrStoreWrite) {
			// Another server would not make the disk any emptier.
			e.log.Error("sync stopped: the header database cannot be written; lookups go on with the headers stored", "err", err)
			return err
		}
		var lieErr *LieError
		var ruleErr headers.RuleError
		switch {
		case errors.As(err, &lieErr) || errors.As(err, &ruleErr) || errors.Is(err, headers.ErrNotMoreWork),
			errors.Is(err, electrumx.ErrBadReply), errors.Is(err, electrumx.ErrProtocol), errors.Is(err, electrumx.ErrReplyTooLarge):
			e.demote(s, err, false)
		case stalled(err):
			e.demoteStalled(s, err) // asked last from now on; the next server is tried
		case errors.Is(err, errGarbled):
			yielded = append(yielded, s)
		default:
			e.log.Info("sync from server failed", "server", s.String(), "err", err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
		if finished+1 == started && ok == 0 && limit < len(servers) {
			limit = len(servers) // every other failed: the demoted too
			for range min(limit-started, syncWave(e.cfg.QueryServers)) {
				dialNext()
			}
		}
	}
	// A server that garbled its 80-byte headers gave way to the others;
	// when none of them did better, it syncs in the single-header form.
	for _, s := range yielded {
		if ok > 0 {
			break
		}
		e.singlesFrom(s.String())
		if err := e.syncWith(ctx, s); err == nil || errors.Is(err, errServerBehind) {
			ok++
		} else {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	if ok == 0 {
		if len(errs) > 0 && allNoCircuit(errs) {
			e.log.Warn("no ElectrumX server reachable: Tor has not built a circuit to any; is it connected to the network yet?")
		}
		return noServer(errs)
	}
	e.mu.Lock()
	e.lastSync, e.synced = e.cfg.Now(), true
	e.warning = ""
	if future != nil {
		e.warning = ErrHeaderFromFuture.Error()
	}
	e.mu.Unlock()
	e.startFullVerify()
	return nil
}

// syncWave is how many servers a sync connects to at once: two more than
// it syncs with, so that two stalled servers (or a Tor still without
// circuits for them) hold up no other. Each further wave waits for one
// handshake timeout at most.
func syncWave(queryServers int) int { return queryServers + 2 }

// slowConnectNotice is when a sync that no server has answered yet says
// so in the log, instead of staying silent for a handshake timeout.
const slowConnectNotice = 5 * time.Second

// allNoCircuit reports whether every server failed because Tor had no
// circuit for it.
func allNoCircuit(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, tor.ErrNoCircuit) {
			return false
		}
	}
	return true
}

// catchUpDelay is how long after a lookup the catch-up it prompted
// starts: 10 to 70 s, at random.
func catchUpDelay() time.Duration {
	return 10*time.Second + rand.N(60*time.Second)
}

// ensureSynced makes sure a lookup has headers to verify against. Before
// the first sync it syncs and the lookup waits. After that, lookups bring
// the newest headers in their own batches, and a stale chain is caught up
// in the background some tens of seconds later (never at the lookup's
// instant); a slow server (ElectrumX 1.20 holds small replies for up to a
// second) never delays the lookup; updates above our tip count as too
// fresh.
func (e *Engine) ensureSynced(ctx context.Context) error {
	e.mu.Lock()
	synced := e.synced
	stale := e.cfg.Now().Sub(e.lastSync) >= e.cfg.CatchUpAfter
	start := synced && stale && !e.catchingUp && e.bgCtx.Err() == nil
	if start {
		e.catchingUp = true
		e.bgWG.Add(1)
	}
	e.mu.Unlock()
	if start {
		go func() {
			defer e.bgWG.Done()
			// Not at the lookup's instant: the lookup brought the newest
			// headers on its own circuit, and a catch-up on the sync
			// circuit at the same moment would tie the two together for
			// anyone watching both.
			select {
			case <-time.After(catchUpDelay()):
			case <-e.bgCtx.Done():
			}
			if err := e.Sync(e.bgCtx); err != nil {
				e.log.Info("background catch-up failed", "err", err)
			}
			e.mu.Lock()
			e.catchingUp = false
			e.mu.Unlock()
		}()
	}
	if synced {
		return nil
	}
	// Never synced. If a sync is running (the daemon starts one), say so
	// at once rather than keep the caller waiting past its deadline.
	if !e.syncMu.TryLock() {
		return fmt.Errorf("%w: the first header sync is running", ErrSyncing)
	}
	e.syncMu.Unlock()
	if err := e.Sync(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrSyncing, err)
	}
	return nil
}

// Follow keeps syncing as servers announce new tips, until ctx ends.
// Without it (Whonix prefers idle apps silent) lookups catch up on demand.
func (e *Engine) Follow(ctx context.Context) {
	e.mu.Lock()
	e.following = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.following = false
		e.mu.Unlock()
	}()
	for ctx.Err() == nil {
		if err := e.Sync(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("sync failed; retrying in 30s", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			continue
		}
		e.waitForTip(ctx)
	}
}

// waitForTip blocks until a server announces a new tip (or its
// connection ends, or five minutes pass).
func (e *Engine) waitForTip(ctx context.Context) {
	for _, s := range e.servers() {
		c, err := e.syncConn(ctx, s)
		if err != nil {
			continue
		}
		_, notes, err := c.SubscribeHeaders(ctx)
		if err != nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-notes:
		case <-time.After(5 * time.Minute):
		}
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
}
