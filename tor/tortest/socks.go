// Package tortest is a fake Tor SOCKS5 port for tests: it records each
// connection's credentials and target exactly as received (host names
// unresolved), relays to loopback addresses it is told about, and can be
// told to refuse or to break the handshake.
package tortest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Record is what one SOCKS connection asked for.
type Record struct {
	User, Password string
	// Target is host:port as the client sent it.
	Target string
	// Domain is true when the target was sent as a host name (ATYP 3).
	Domain bool
	// Methods are the authentication methods the client offered.
	Methods string
}

// Mode makes the proxy misbehave.
type Mode int

// Modes of the fake proxy.
const (
	Honest       Mode = iota
	RefuseAll         // answer every CONNECT with "host unreachable"
	GarbageReply      // answer the greeting with garbage
	HangUp            // close right after the greeting
	// NoCircuit takes the CONNECT and never answers it, as Tor does while
	// it has no circuit (before it has connected to the network).
	NoCircuit
)

// Link emulates what Tor puts between a client and a server, as Tor
// isolates streams: the first connection with a credential pair never
// seen builds a new circuit (CircuitSetup, once per pair), and every byte
// then crosses a one-way delay each way (OneWay) at a capped rate
// (BytesPerSecond, 0: none). The zero Link is loopback.
type Link struct {
	CircuitSetup   time.Duration
	OneWay         time.Duration
	BytesPerSecond int
}

// TorLink is Tor as the issue measuring ncspv describes it: a new
// circuit takes 2 s, a one-way trip 250 ms, at 1 MB/s.
var TorLink = Link{CircuitSetup: 2 * time.Second, OneWay: 250 * time.Millisecond, BytesPerSecond: 1 << 20}

// Proxy is a fake SOCKS5 server on 127.0.0.1.
type Proxy struct {
	ln net.Listener

	mu       sync.Mutex
	routes   map[string]string
	records  []Record
	mode     Mode
	link     Link
	circuits map[string]bool // credential pairs with a circuit built
	relayed  int64           // bytes relayed, both ways
	wg       sync.WaitGroup
	conns    map[net.Conn]bool
}

// SetLink makes new connections cross link.
func (p *Proxy) SetLink(l Link) {
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
}

// Relayed is how many bytes the proxy has relayed, both ways.
func (p *Proxy) Relayed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relayed
}

// Circuits is how many distinct credential pairs have had a circuit.
func (p *Proxy) Circuits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.circuits)
}

// NewProxy starts a fake proxy on a free loopback port.
func NewProxy() (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return NewProxyOn(ln), nil
}

// NewProxyOn serves the fake proxy on ln (e.g. a unix socket, as Tor
// Browser's TOR_SOCKS_IPC_PATH).
func NewProxyOn(ln net.Listener) *Proxy {
	p := &Proxy{ln: ln, routes: map[string]string{}, conns: map[net.Conn]bool{}, circuits: map[string]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Route makes target (host:port, as clients name it) reach realAddr.
// Targets without a route are refused, as an offline Tor would.
func (p *Proxy) Route(target, realAddr string) {
	p.mu.Lock()
	p.routes[target] = realAddr
	p.mu.Unlock()
}

// SetMode changes how the proxy behaves for new connections.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// Records returns what every connection asked for so far.
func (p *Proxy) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.records...)
}

// Close stops the proxy and its relays.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
				c.Close()
			}()
			p.serve(c)
		}()
	}
}

var errSocks = errors.New("socks protocol error")

func (p *Proxy) serve(c net.Conn) {
	p.mu.Lock()
	mode, link := p.mode, p.link
	p.mu.Unlock()

	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	switch mode {
	case GarbageReply:
		c.Write([]byte{0x42, 0x42})
		return
	case HangUp:
		return
	}
	// Like Tor: take username/password when offered (that is what
	// isolates streams), else no authentication.
	rec := Record{Methods: string(methods)}
	if contains(methods, 2) {
		c.Write([]byte{5, 2})
		var err error
		if rec.User, rec.Password, err = readUserPass(c); err != nil {
			return
		}
		c.Write([]byte{1, 0})
	} else if contains(methods, 0) {
		c.Write([]byte{5, 0})
	} else {
		c.Write([]byte{5, 0xff})
		p.mu.Lock()
		p.records = append(p.records, rec)
		p.mu.Unlock()
		return
	}

	target, domain, err := readConnect(c)
	if err != nil {
		return
	}
	rec.Target, rec.Domain = target, domain
	if mode == NoCircuit {
		io.Copy(io.Discard, c) // until the client gives up
		return
	}
	p.mu.Lock()
	p.records = append(p.records, rec)
	real, ok := p.routes[target]
	pair := rec.User + "\x00" + rec.Password
	newCircuit := !p.circuits[pair]
	p.circuits[pair] = true
	p.mu.Unlock()
	if newCircuit {
		time.Sleep(link.CircuitSetup)
	}
	// The CONNECT crosses to the exit and back.
	time.Sleep(2 * link.OneWay)
	if !ok || mode == RefuseAll {
		c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
		return
	}
	up, err := net.Dial("tcp", real)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	done := make(chan struct{}, 2)
	go func() { p.relay(up, c, link); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { p.relay(c, up, link); done <- struct{}{} }()
	<-done
}

// counting adds what it writes to the proxy's relayed bytes as it goes.
type counting struct {
	w io.Writer
	p *Proxy
}

func (c *counting) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.mu.Lock()
	c.p.relayed += int64(n)
	c.p.mu.Unlock()
	return n, err
}

// relay copies src to dst across link: each read is delivered OneWay
// after it was read, no sooner than the rate cap allows, in order.
func (p *Proxy) relay(dst io.Writer, src io.Reader, link Link) {
	if link == (Link{}) {
		io.Copy(&counting{w: dst, p: p}, src)
		return
	}
	type piece struct {
		b  []byte
		at time.Time
	}
	pieces := make(chan piece, 1024)
	go func() {
		defer close(pieces)
		var free time.Time // when the link is free to carry the next byte
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				start := time.Now()
				if free.After(start) {
					start = free
				}
				if link.BytesPerSecond > 0 {
					free = start.Add(time.Duration(n) * time.Second / time.Duration(link.BytesPerSecond))
				} else {
					free = start
				}
				pieces <- piece{buf[:n], free.Add(link.OneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for pc := range pieces {
		time.Sleep(time.Until(pc.at))
		if _, err := dst.Write(pc.b); err != nil {
			for range pieces {
			}
			return
		}
		p.mu.Lock()
		p.relayed += int64(len(pc.b))
		p.mu.Unlock()
	}
}

func contains(b []byte, v byte) bool {
	for _, x := range b {
		if x == v {
			return true
		}
	}
	return false
}

func readUserPass(c net.Conn) (string, string, error) {
	var v [2]byte
	if _, err := io.ReadFull(c, v[:]); err != nil || v[0] != 1 {
		return "", "", errSocks
	}
	user := make([]byte, v[1])
	if _, err := io.ReadFull(c, user); err != nil {
		return "", "", err
	}
	var pl [1]byte
	if _, err := io.ReadFull(c, pl[:]); err != nil {
		return "", "", err
	}
	pass := make([]byte, pl[0])
	if _, err := io.ReadFull(c, pass); err != nil {
		return "", "", err
	}
	return string(user), string(pass), nil
}

func readConnect(c net.Conn) (string, bool, error) {
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != 5 || h[1] != 1 {
		return "", false, errSocks
	}
	var host string
	domain := false
	switch h[3] {
	case 1:
		var a [4]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return "", false, err
		}
		host = net.IP(a[:]).String()
	case 4:
		var a [16]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return "", false, err
		}
		host = net.IP(a[:]).String()
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return "", false, err
		}
		name := make([]byte, l[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", false, err
		}
		host, domain = string(name), true
	default:
		return "", false, errSocks
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return "", false, err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))), domain, nil
}
