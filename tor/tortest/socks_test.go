package tortest

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

// TestRecordsAndRelays: the fake proxy records credentials and the
// unresolved target, relays to its route, and refuses unknown targets.
func TestRecordsAndRelays(t *testing.T) {
	echo := echoServer(t)
	p, err := NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Route("service.onion:80", echo.Addr().String())
	d, _ := proxy.SOCKS5("tcp", p.Addr(), &proxy.Auth{User: "u", Password: "pw"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", "service.onion:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("relay: %q %v", buf, err)
	}
	c.Close()
	if _, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", "unknown.onion:80"); err == nil {
		t.Fatal("unrouted target connected")
	}
	recs := p.Records()
	if len(recs) != 2 || recs[0] != (Record{User: "u", Password: "pw", Target: "service.onion:80", Domain: true, Methods: "\x00\x02"}) {
		t.Fatalf("records %+v", recs)
	}
}

// TestLink: through an emulated Tor link, a credential pair's first
// connection waits for its circuit and later ones do not build another;
// every round trip costs two one-way delays, and a transfer the rate cap.
// (Lower bounds only: a slow machine adds time, never removes it.)
func TestLink(t *testing.T) {
	echo := echoServer(t)
	p, err := NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Route("service.onion:80", echo.Addr().String())
	link := Link{CircuitSetup: 300 * time.Millisecond, OneWay: 50 * time.Millisecond, BytesPerSecond: 1 << 20}
	p.SetLink(link)
	dial := func(user string) (net.Conn, time.Duration) {
		t.Helper()
		d, _ := proxy.SOCKS5("tcp", p.Addr(), &proxy.Auth{User: user, Password: "pw"}, proxy.Direct)
		t0 := time.Now()
		c, err := d.(proxy.ContextDialer).DialContext(context.Background(), "tcp", "service.onion:80")
		if err != nil {
			t.Fatal(err)
		}
		return c, time.Since(t0)
	}
	a1, took := dial("a")
	defer a1.Close()
	if took < link.CircuitSetup+2*link.OneWay {
		t.Errorf("first connection of a pair took %v, less than a circuit and a round trip", took)
	}
	a2, _ := dial("a")
	defer a2.Close()
	b, _ := dial("b")
	defer b.Close()
	if n := p.Circuits(); n != 2 {
		t.Errorf("%d circuits for 2 credential pairs", n)
	}
	t0 := time.Now()
	a2.Write([]byte("x"))
	var one [1]byte
	io.ReadFull(a2, one[:])
	if rt := time.Since(t0); rt < 2*link.OneWay {
		t.Errorf("round trip %v, less than two one-way delays", rt)
	}
	const size = 200 << 10
	t0 = time.Now()
	go a1.Write(make([]byte, size))
	if _, err := io.ReadFull(a1, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	// Both ways at 1 MiB/s: at least size/rate, plus a round trip.
	if took := time.Since(t0); took < time.Duration(size)*time.Second/(1<<20) {
		t.Errorf("%d bytes echoed in %v, faster than the rate cap", size, took)
	}
}

// echoServer answers every connection with what it receives.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return echo
}
