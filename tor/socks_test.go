package tor_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

func TestParseProxy(t *testing.T) {
	good := map[string]tor.Proxy{
		"none":                    tor.Direct,
		"127.0.0.1:9050":          {Network: "tcp", Address: "127.0.0.1:9050"},
		"10.152.152.10:9050":      {Network: "tcp", Address: "10.152.152.10:9050"},
		"[::1]:9150":              {Network: "tcp", Address: "[::1]:9150"},
		"unix:/run/tor/socks":     {Network: "unix", Address: "/run/tor/socks"},
		"/var/run/tor/socks":      {Network: "unix", Address: "/var/run/tor/socks"},
		" localhost:9050 ":        {Network: "tcp", Address: "localhost:9050"},
		"gateway.whonix.lan:9050": {Network: "tcp", Address: "gateway.whonix.lan:9050"},
	}
	for in, want := range good {
		got, err := tor.ParseProxy(in)
		if err != nil || got != want {
			t.Errorf("ParseProxy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "9050", "host:", ":9050", "host:0", "host:99999", "unix:relative", "socks5://x:1"} {
		if _, err := tor.ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) accepted", bad)
		}
	}
	if !tor.Direct.IsDirect() || tor.DefaultProxy.IsDirect() {
		t.Fatal("IsDirect wrong")
	}
}

func TestProxyFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		env  map[string]string
		want tor.Proxy
		ok   bool
	}{
		{map[string]string{}, tor.Proxy{}, false},
		{map[string]string{"TOR_SOCKS_PORT": "9150"}, tor.Proxy{Network: "tcp", Address: "127.0.0.1:9150"}, true},
		{map[string]string{"TOR_SOCKS_HOST": "10.152.152.10", "TOR_SOCKS_PORT": "9050"}, tor.Proxy{Network: "tcp", Address: "10.152.152.10:9050"}, true},
		{map[string]string{"TOR_SOCKS_IPC_PATH": "/run/tb/socks", "TOR_SOCKS_PORT": "9150"}, tor.Proxy{Network: "unix", Address: "/run/tb/socks"}, true},
	}
	for _, c := range cases {
		got, ok, err := tor.ProxyFromEnv(env(c.env))
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("env %v: %v %v %v", c.env, got, ok, err)
		}
	}
	if _, _, err := tor.ProxyFromEnv(env(map[string]string{"TOR_SOCKS_PORT": "x"})); err == nil {
		t.Error("bad TOR_SOCKS_PORT accepted")
	}
	if _, _, err := tor.ProxyFromEnv(env(map[string]string{"TOR_SOCKS_IPC_PATH": "rel/path"})); err == nil {
		t.Error("relative TOR_SOCKS_IPC_PATH accepted")
	}
}

func TestIsolator(t *testing.T) {
	i := tor.NewIsolator()
	a1, a2, b := i.ForStream("site-a"), i.ForStream("site-a"), i.ForStream("site-b")
	if a1 != a2 {
		t.Fatal("equal stream IDs must share credentials")
	}
	if a1 == b || a1.User == b.User {
		t.Fatal("different stream IDs must not share credentials")
	}
	if s := i.ForSync(); s == a1 || s == b || s != i.ForSync() {
		t.Fatal("sync must have stable credentials of its own")
	}
	if i.ForStream("") == i.ForStream("") {
		t.Fatal("anonymous lookups must get fresh credentials")
	}
	if tor.NewIsolator().ForStream("site-a") == a1 {
		t.Fatal("credentials must not be predictable across processes")
	}
	if strings.Contains(a1.User+a1.Password, "site-a") || len(a1.User) != 32 || len(a1.Password) != 32 {
		t.Fatalf("credentials leak the stream ID or have a bad size: %+v", a1)
	}
	// "a\x00b" vs "a" + "b" style collisions between domains.
	if i.ForStream("sync") == i.ForSync() {
		t.Fatal("a stream named sync shares the sync circuit")
	}
}

// torFixture is a fake ElectrumX reachable only as an onion name through a
// fake SOCKS proxy.
type torFixture struct {
	srv    *electrumxtest.Server
	proxy  *tortest.Proxy
	server electrumx.Server
}

const fakeOnion = "h6qrnwxtwiaahsw4qhk2nbutswwb54vnqso6jrxeuk6nwtfbos7jkoqd.onion"

func newTorFixture(t *testing.T, ln net.Listener) *torFixture {
	t.Helper()
	g := chaingen.New(&headers.RegTestParams, 8)
	g.Chain(10)
	srv, err := electrumxtest.NewServer(electrumxtest.FromChain(g), electrumxtest.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var p *tortest.Proxy
	if ln != nil {
		p = tortest.NewProxyOn(ln)
	} else if p, err = tortest.NewProxy(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	server := electrumx.Server{Host: fakeOnion, Port: 50002, TLS: true}
	p.Route(server.Addr(), srv.Address().Addr())
	return &torFixture{srv: srv, proxy: p, server: server}
}

// TestIsolationThroughProxy: lookups with different stream IDs use
// different credentials and connections, equal IDs share them, sync has its
// own, anonymous lookups never share, the onion name reaches the proxy
// unresolved, and nothing reaches the server except through the proxy.
func TestIsolationThroughProxy(t *testing.T) {
	f := newTorFixture(t, nil)
	router := tor.NewRouter(tor.Proxy{Network: "tcp", Address: f.proxy.Addr()})
	pins, _ := electrumx.OpenPinStore(filepath.Join(t.TempDir(), "pins.json"))
	pool := electrumx.NewPool(electrumx.Config{Pins: pins})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	lookup := func(g tor.Group) *electrumx.Client {
		t.Helper()
		c, err := pool.Get(ctx, f.server, g.Key, electrumx.DialFunc(g.Dial))
		if err != nil {
			t.Fatalf("dial through proxy: %v", err)
		}
		if _, err := c.BlockHeader(ctx, 3, 0); err != nil {
			t.Fatalf("call through proxy: %v", err)
		}
		return c
	}
	a1 := lookup(router.ForStream("site-a"))
	b := lookup(router.ForStream("site-b"))
	a2 := lookup(router.ForStream("site-a"))
	s1 := lookup(router.ForSync())
	s2 := lookup(router.ForSync())
	anon1 := lookup(router.ForStream(""))
	anon2 := lookup(router.ForStream(""))

	if a1 != a2 || s1 != s2 {
		t.Fatal("equal isolation groups must share a connection")
	}
	distinct := map[*electrumx.Client]bool{a1: true, b: true, s1: true, anon1: true, anon2: true}
	if len(distinct) != 5 {
		t.Fatalf("%d distinct connections for 5 isolation groups", len(distinct))
	}
	recs := f.proxy.Records()
	if len(recs) != 5 {
		t.Fatalf("proxy saw %d connections, want 5", len(recs))
	}
	creds := map[string]bool{}
	for _, r := range recs {
		if r.Target != f.server.Addr() || !r.Domain {
			t.Fatalf("target %q (domain %v): the onion name must reach the proxy unresolved", r.Target, r.Domain)
		}
		if r.User == "" || r.Password == "" {
			t.Fatal("a connection without SOCKS credentials")
		}
		creds[r.User+":"+r.Password] = true
	}
	if len(creds) != 5 {
		t.Fatalf("%d distinct credentials for 5 groups", len(creds))
	}
	if got := f.srv.Accepted(); got != len(recs) {
		t.Fatalf("server accepted %d connections, the proxy relayed %d: something bypassed the proxy", got, len(recs))
	}
}

// TestUnixSocketProxy uses a SOCKS port on a unix socket, as Tor Browser
// offers through TOR_SOCKS_IPC_PATH.
func TestUnixSocketProxy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	f := newTorFixture(t, ln)
	p, ok, err := tor.ProxyFromEnv(func(k string) string {
		if k == "TOR_SOCKS_IPC_PATH" {
			return path
		}
		return ""
	})
	if err != nil || !ok {
		t.Fatal(err)
	}
	g := tor.NewRouter(p).ForStream("x")
	pins, _ := electrumx.OpenPinStore("")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := electrumx.Dial(ctx, f.server, electrumx.Config{Dial: electrumx.DialFunc(g.Dial), Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if recs := f.proxy.Records(); len(recs) != 1 || recs[0].Target != f.server.Addr() {
		t.Fatalf("records %+v", recs)
	}
}

// TestMisbehavingProxy: a proxy that refuses, garbles or hangs up gives a
// clear error and never a direct connection.
func TestMisbehavingProxy(t *testing.T) {
	for _, m := range []tortest.Mode{tortest.RefuseAll, tortest.GarbageReply, tortest.HangUp} {
		f := newTorFixture(t, nil)
		f.proxy.SetMode(m)
		g := tor.NewRouter(tor.Proxy{Network: "tcp", Address: f.proxy.Addr()}).ForSync()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := electrumx.Dial(ctx, f.server, electrumx.Config{Dial: electrumx.DialFunc(g.Dial), Pins: &electrumx.PinStore{}})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "SOCKS proxy") {
			t.Fatalf("mode %d: %v", m, err)
		}
		if errors.Is(err, tor.ErrProxyUnreachable) {
			t.Fatalf("mode %d: a proxy that answered is called unreachable: %v", m, err)
		}
		if f.srv.Accepted() != 0 {
			t.Fatalf("mode %d: the server was reached", m)
		}
	}
	// No proxy listening at all.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	g := tor.NewRouter(tor.Proxy{Network: "tcp", Address: addr}).ForSync()
	_, err := g.Dial(context.Background(), "tcp", "example.onion:50002")
	var pe *tor.ProxyUnreachableError
	if !errors.Is(err, tor.ErrProxyUnreachable) || !errors.As(err, &pe) || pe.Proxy != addr {
		t.Fatalf("dead proxy: %v", err)
	}
	if _, err := g.Dial(context.Background(), "udp", "example.onion:53"); !errors.Is(err, tor.ErrNotTCP) {
		t.Fatalf("udp through proxy: %v", err)
	}
}

// TestIsolationCannotVanish: only username/password authentication is
// offered to the proxy (what isolates streams in Tor), and a proxy that
// picks "no authentication" anyway is refused with ErrNoIsolation, never
// used as one shared circuit.
func TestIsolationCannotVanish(t *testing.T) {
	f := newTorFixture(t, nil)
	g := tor.NewRouter(tor.Proxy{Network: "tcp", Address: f.proxy.Addr()}).ForStream("s1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := electrumx.Dial(ctx, f.server, electrumx.Config{Dial: electrumx.DialFunc(g.Dial), Pins: &electrumx.PinStore{}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	recs := f.proxy.Records()
	if len(recs) == 0 || recs[0].Methods != "\x02" {
		t.Fatalf("methods offered: %+v, want username/password only", recs)
	}
	// A proxy that answers "no authentication", whatever was offered:
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			var b [3]byte
			io.ReadFull(conn, b[:])
			conn.Write([]byte{5, 0}) // "no authentication", whatever was offered
			time.Sleep(100 * time.Millisecond)
			conn.Close()
		}
	}()
	g = tor.NewRouter(tor.Proxy{Network: "tcp", Address: ln.Addr().String()}).ForStream("s1")
	if _, err := g.Dial(ctx, "tcp", "example.onion:50002"); !errors.Is(err, tor.ErrNoIsolation) {
		t.Fatalf("proxy that picked no authentication: %v, want ErrNoIsolation", err)
	}
}

// TestConcurrentLookupsShareOneDial: simultaneous lookups of one stream ID
// open one connection, not one each.
func TestConcurrentLookupsShareOneDial(t *testing.T) {
	f := newTorFixture(t, nil)
	router := tor.NewRouter(tor.Proxy{Network: "tcp", Address: f.proxy.Addr()})
	pool := electrumx.NewPool(electrumx.Config{Pins: &electrumx.PinStore{}})
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := router.ForStream("same")
			c, err := pool.Get(ctx, f.server, g.Key, electrumx.DialFunc(g.Dial))
			if err == nil {
				_, err = c.BlockHeader(ctx, 1, 0)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(f.proxy.Records()); n != 1 {
		t.Fatalf("%d connections for one stream ID", n)
	}
}

// TestNoCircuit: a Tor that takes the connection but never answers it
// (no circuit yet, right after boot) is reported as that, not as a server
// that stalled.
func TestNoCircuit(t *testing.T) {
	f := newTorFixture(t, nil)
	f.proxy.SetMode(tortest.NoCircuit)
	g := tor.NewRouter(tor.Proxy{Network: "tcp", Address: f.proxy.Addr()}).ForStream("s")
	_, err := electrumx.Dial(context.Background(), f.server, electrumx.Config{Dial: electrumx.DialFunc(g.Dial),
		Pins: &electrumx.PinStore{}, HandshakeTimeout: 300 * time.Millisecond})
	if !errors.Is(err, tor.ErrNoCircuit) || !errors.Is(err, electrumx.ErrStalled) {
		t.Fatalf("%v, want ErrNoCircuit and ErrStalled", err)
	}
	if !strings.Contains(err.Error(), "connected to the network") {
		t.Fatalf("the message does not say what is happening: %v", err)
	}
}
