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
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
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
