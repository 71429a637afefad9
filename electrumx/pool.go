package electrumx

import (
	"context"
	"sync"
	"time"
)

// Pool keeps connections keyed by server and isolation group: a
// connection opened for one group (one Tor circuit's credentials) is never
// handed to another. Idle connections are closed after IdleTimeout, so an
// idle ncspv makes no traffic.
type Pool struct {
	cfg         Config // Dial is ignored: each group brings its own
	IdleTimeout time.Duration
	// MaxConns caps the pooled connections (default DefaultMaxConns): a
	// new one past it closes the least recently used, so that no number
	// of stream IDs can exhaust file descriptors or memory.
	MaxConns int
	// Spares is how many connections per server GetNew keeps dialed
	// ahead, each with a dial function from SpareDial (fresh random Tor
	// credentials, used for nothing else), so that a stream ID seen for
	// the first time need not wait for a new circuit: it gets a spare,
	// which becomes its circuit, and another is dialed. Spares are dialed
	// only when GetNew is called, and closed after IdleTimeout like any
	// connection, so an idle ncspv makes no traffic. Set both before use.
	Spares    int
	SpareDial func() DialFunc

	mu           sync.Mutex
	conns        map[poolKey]*poolEntry
	lastReap     time.Time
	spares       map[string][]*poolEntry // by server, dialed
	spareDialing map[string]int
	closed       bool

	stop chan struct{} // ends the janitor
	once sync.Once
}

type poolKey struct {
	server string
	group  string
}

type poolEntry struct {
	ready    chan struct{} // closed when the dial finished
	client   *Client
	err      error
	lastUsed time.Time
}

// DefaultIdleTimeout closes connections unused for this long.
const DefaultIdleTimeout = 5 * time.Minute

// DefaultMaxConns is what 64 concurrent RPC requests (the RPC server's
// default cap) asking two servers each hold at once, so that in practice
// only idle connections are closed to make room. Each costs ncspv about
// 25 KB: 256 of them took a flood of 2,000 stream IDs over 20 MiB.
const DefaultMaxConns = 128

// NewPool makes a pool; cfg.Dial is ignored. A janitor closes idle
// connections every minute even when nothing asks for a connection, so an
// idle ncspv really goes quiet; Close stops it.
func NewPool(cfg Config) *Pool {
	p := &Pool{cfg: cfg, IdleTimeout: DefaultIdleTimeout, conns: map[poolKey]*poolEntry{},
		spares: map[string][]*poolEntry{}, spareDialing: map[string]int{}, stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				p.mu.Lock()
				p.reapLocked(now)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// Get returns the open connection of (server, group), dialing it with dial
// if there is none. Concurrent callers of one key share one dial.
func (p *Pool) Get(ctx context.Context, server Server, group string, dial DialFunc) (*Client, error) {
	key := poolKey{server.String(), group}
	now := time.Now()
	p.mu.Lock()
	// A sweep per Get walked every connection on every lookup (8 % of a
	// lookup's CPU with 100 streams open); once a second is enough.
	if now.Sub(p.lastReap) >= min(p.IdleTimeout, time.Second) {
		p.reapLocked(now)
	}
	e, ok := p.conns[key]
	if ok {
		select {
		case <-e.ready:
			if e.err == nil && e.client.Err() == nil {
				e.lastUsed = now
				p.mu.Unlock()
				return e.client, nil
			}
			ok = false // failed or dead: dial again
		default:
		}
	}
	if !ok {
		p.evictLocked()
		e = &poolEntry{ready: make(chan struct{}), lastUsed: now}
		p.conns[key] = e
		p.mu.Unlock()
		cfg := p.cfg
		cfg.Dial = dial
		e.client, e.err = Dial(ctx, server, cfg)
		close(e.ready)
		if e.err != nil {
			p.mu.Lock()
			if p.conns[key] == e {
				delete(p.conns, key)
			}
			p.mu.Unlock()
		}
		return e.client, e.err
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
		if e.err != nil {
			return nil, e.err
		}
		return e.client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// GetNew is Get for a group that may be new, such as a stream ID seen
// for the first time: when the group has no connection yet and a spare
// is ready, the spare becomes the group's connection at once, with no
// circuit to build. Each call tops the server's spares up.
func (p *Pool) GetNew(ctx context.Context, server Server, group string, dial DialFunc) (*Client, error) {
	key := poolKey{server.String(), group}
	now := time.Now()
	p.mu.Lock()
	if _, ok := p.conns[key]; !ok {
		if c := p.takeSpareLocked(server.String()); c != nil {
			p.evictLocked()
			ready := make(chan struct{})
			close(ready)
			p.conns[key] = &poolEntry{ready: ready, client: c, lastUsed: now}
			p.mu.Unlock()
			p.refill(server)
			return c, nil
		}
	}
	p.mu.Unlock()
	p.refill(server)
	return p.Get(ctx, server, group, dial)
}

// takeSpareLocked removes and returns a live spare of server, if any.
func (p *Pool) takeSpareLocked(server string) *Client {
	list := p.spares[server]
	for len(list) > 0 {
		e := list[len(list)-1]
		list = list[:len(list)-1]
		if e.client.Err() == nil {
			p.spares[server] = list
			return e.client
		}
		e.client.Close()
	}
	p.spares[server] = list
	return nil
}

// refill dials spares for server up to Spares, in the background.
func (p *Pool) refill(server Server) {
	if p.SpareDial == nil || p.Spares <= 0 {
		return
	}
	s := server.String()
	p.mu.Lock()
	need := p.Spares - len(p.spares[s]) - p.spareDialing[s]
	if p.closed || need <= 0 {
		p.mu.Unlock()
		return
	}
	p.spareDialing[s] += need
	p.mu.Unlock()
	for range need {
		go func() {
			cfg := p.cfg
			cfg.Dial = p.SpareDial()
			c, err := Dial(context.Background(), server, cfg) // bounded by HandshakeTimeout
			p.mu.Lock()
			defer p.mu.Unlock()
			p.spareDialing[s]--
			if err != nil {
				return
			}
			if p.closed {
				c.Close()
				return
			}
			p.spares[s] = append(p.spares[s], &poolEntry{client: c, lastUsed: time.Now()})
		}()
	}
}

// SpareCount is how many spares of server are dialed and waiting.
func (p *Pool) SpareCount(server Server) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spares[server.String()])
}

// Drop closes and forgets a connection, e.g. after its server lied.
func (p *Pool) Drop(c *Client) {
	p.mu.Lock()
	for k, e := range p.conns {
		select {
		case <-e.ready:
		default:
			continue // still dialing: its client is being written, and is not c
		}
		if e.client == c {
			delete(p.conns, k)
		}
	}
	p.mu.Unlock()
	c.Close()
}

// Len is the number of pooled connections (open or dialing).
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close closes every connection and stops the janitor.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.stop) })
	p.mu.Lock()
	conns := p.conns
	p.conns = map[poolKey]*poolEntry{}
	p.closed = true
	for _, list := range p.spares {
		for _, e := range list {
			e.client.Close()
		}
	}
	p.spares = map[string][]*poolEntry{}
	p.mu.Unlock()
	for _, e := range conns {
		select {
		case <-e.ready:
			if e.client != nil {
				e.client.Close()
			}
		default:
		}
	}
}

// evictLocked makes room for one more connection under MaxConns by
// closing the least recently used dialed ones.
func (p *Pool) evictLocked() {
	limit := p.MaxConns
	if limit <= 0 {
		limit = DefaultMaxConns
	}
	for len(p.conns) >= limit {
		var oldest poolKey
		var found *poolEntry
		for k, e := range p.conns {
			select {
			case <-e.ready:
			default:
				continue // still dialing
			}
			if found == nil || e.lastUsed.Before(found.lastUsed) {
				oldest, found = k, e
			}
		}
		if found == nil {
			return // every one is dialing; they end by HandshakeTimeout
		}
		if found.client != nil {
			found.client.Close()
		}
		delete(p.conns, oldest)
	}
}

func (p *Pool) reapLocked(now time.Time) {
	p.lastReap = now
	if p.IdleTimeout <= 0 {
		return
	}
	for s, list := range p.spares {
		kept := list[:0]
		for _, e := range list {
			if e.client.Err() != nil || now.Sub(e.lastUsed) > p.IdleTimeout {
				e.client.Close()
				continue
			}
			kept = append(kept, e)
		}
		p.spares[s] = kept
	}
	for k, e := range p.conns {
		select {
		case <-e.ready:
		default:
			continue
		}
		if e.client == nil || e.client.Err() != nil || now.Sub(e.lastUsed) > p.IdleTimeout {
			if e.client != nil {
				e.client.Close()
			}
			delete(p.conns, k)
		}
	}
}
