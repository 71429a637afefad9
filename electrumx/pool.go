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

	mu       sync.Mutex
	conns    map[poolKey]*poolEntry
	lastReap time.Time

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

// DefaultMaxConns is twice what 64 concurrent RPC requests (the RPC
// server's default cap) asking two servers each can hold at once, so that
// only idle connections are closed to make room.
const DefaultMaxConns = 256

// NewPool makes a pool; cfg.Dial is ignored. A janitor closes idle
// connections every minute even when nothing asks for a connection, so an
// idle ncspv really goes quiet; Close stops it.
func NewPool(cfg Config) *Pool {
	p := &Pool{cfg: cfg, IdleTimeout: DefaultIdleTimeout, conns: map[poolKey]*poolEntry{},
		stop: make(chan struct{})}
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
