package tor_test

import (
	"context"
	"log/slog"
	"net"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cretz/bine/control"
	"github.com/ncspv/ncspv/prop279"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

// TestRealTorResolverCrashAndRestart documents what a crash does to Tor:
// a controller that dies without resetting __LeaveStreamsUnattached leaves
// it at 1, so Tor holds every new stream (clearnet ones too) until the
// client's SOCKS timeout. A restarted ncspv must take those streams over.
func TestRealTorResolverCrashAndRestart(t *testing.T) {
	rt := tortest.StartRealTor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The crashed ncspv: set the option, then drop the connection with no
	// QUIT and no reset.
	nc, err := net.Dial("tcp", rt.ControlAddr)
	if err != nil {
		t.Fatal(err)
	}
	crashed := control.NewConn(textproto.NewConn(nc))
	if err := crashed.Authenticate(""); err != nil {
		t.Fatal(err)
	}
	if err := crashed.SetConf(control.NewKeyVal("__LeaveStreamsUnattached", "1")); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	p, err := tor.ParseProxy(rt.SocksAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"example.bit:80", "www.example.com:443"} {
		go func() {
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			defer dcancel()
			if c, err := p.Dialer(tor.Credentials{User: target, Password: "pw"})(dctx, "tcp", target); err == nil {
				c.Close()
			}
		}()
	}
	status := func() string { return rt.StreamStatus(t) }
	waitFor := func(what string, re *regexp.Regexp) {
		t.Helper()
		for !re.MatchString(status()) {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("%s: stream-status %q", what, status())
			}
		}
	}
	waitFor("both streams reach Tor", regexp.MustCompile(`(?s)(example\.bit:80.*www\.example\.com:443|www\.example\.com:443.*example\.bit:80)`))
	if v := rt.LeaveStreamsUnattached(t); v != "1" {
		t.Fatalf("after the crash __LeaveStreamsUnattached = %q; this test documents that Tor keeps it at 1", v)
	}

	// The restarted ncspv.
	lookup := func(ctx context.Context, name, iso string) ([]byte, error) {
		if name == "d/example" {
			return []byte(`{"map":{"_tor":{"txt":"` + resolverOnion + `"}}}`), nil
		}
		return nil, prop279.ErrNotFound
	}
	res := &tor.StreamResolver{Resolve: func(ctx context.Context, q, iso string) prop279.Answer {
		return prop279.Resolve(ctx, lookup, q, iso)
	}}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	attachedLog := make(chan string, 100)
	go func() {
		done <- tor.RunControlResolver(rctx, tor.ControlOptions{Addr: rt.ControlAddr, Resolver: res,
			Log: slog.New(slog.NewTextHandler(testWriter{t, attachedLog}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()

	// The .bit stream gets its onion and is attached (an attached onion
	// stream waits for its descriptor, which Tor shows as SENTCONNECT).
	waitFor("the waiting .bit stream is redirected and attached",
		regexp.MustCompile(`(?m)^\d+ SENTCONNECT 0 `+regexp.QuoteMeta(resolverOnion)+`:80$`))
	// The clearnet stream was attached: Tor no longer lets anyone attach it.
	m := regexp.MustCompile(`(?m)^(\d+) \w+ 0 www\.example\.com:443$`).FindStringSubmatch(status())
	if m == nil {
		t.Fatalf("the clearnet stream is gone: %q", status())
	}
	for id := ""; id != m[1]; {
		select {
		case id = <-attachedLog:
		case <-ctx.Done():
			t.Fatal("ncspv never attached the waiting clearnet stream")
		}
	}
	if _, err := rt.Control.SendRequest("ATTACHSTREAM %s 0", m[1]); err == nil || !strings.Contains(err.Error(), "555") {
		t.Fatalf("Tor says the clearnet stream still waited for a controller: %v", err)
	}
	rcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
