package tor_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cretz/bine/control"
	"github.com/ncspv/ncspv/prop279"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

const resolverOnion = "dhflg7a7etr77hwt4eerwoovhg7b5bivt2jem4366dt4psgnl5diyiyd.onion"

// TestRealTorControlResolver drives Debian's tor through its control port:
// a .bit stream is redirected to the name's onion, a clearnet stream opened
// while that lookup is held is attached at once, a missing .bit name has
// its stream closed, and lookups carry each stream's SOCKS credentials.
func TestRealTorControlResolver(t *testing.T) {
	runResolverScenario(t, tortest.StartRealTor(t), "")
}

// runResolverScenario runs ncspv's resolver against rt, connected to
// controlAddr (rt's own control port when empty), and checks the outcome
// through rt's control port.
func runResolverScenario(t *testing.T, rt *tortest.RealTor, controlAddr string) {
	if controlAddr == "" {
		controlAddr = rt.ControlAddr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	observed := make(chan control.Event, 1000)
	if err := rt.Control.AddEventListener(observed, control.EventCodeStream); err != nil {
		t.Fatal(err)
	}
	go rt.Control.HandleEvents(ctx)

	release := make(chan struct{})
	var mu sync.Mutex
	isos := map[string]string{} // Namecoin name -> isolation IDs seen
	lookup := func(ctx context.Context, name, iso string) ([]byte, error) {
		mu.Lock()
		isos[name] += iso + ";"
		mu.Unlock()
		if name != "d/example" {
			return nil, prop279.ErrNotFound
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(`{"map":{"_tor":{"txt":"` + resolverOnion + `"}}}`), nil
	}
	res := &tor.StreamResolver{
		Resolve: func(ctx context.Context, q, iso string) prop279.Answer { return prop279.Resolve(ctx, lookup, q, iso) },
		Timeout: 30 * time.Second,
	}
	attachedLog := make(chan string, 100) // stream IDs ncspv logged as attached
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- tor.RunControlResolver(rctx, tor.ControlOptions{Addr: controlAddr, Resolver: res,
			Log: slog.New(slog.NewTextHandler(testWriter{t, attachedLog}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	// Wait until the resolver has made Tor leave streams unattached.
	for rt.LeaveStreamsUnattached(t) != "1" {
		select {
		case err := <-done:
			t.Fatalf("resolver stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}

	p, err := tor.ParseProxy(rt.SocksAddr)
	if err != nil {
		t.Fatal(err)
	}
	open := func(target, user string) {
		go func() {
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			defer dcancel()
			if c, err := p.Dialer(tor.Credentials{User: user, Password: "pw"})(dctx, "tcp", target); err == nil {
				c.Close()
			}
		}()
	}
	open("example.bit:80", "alice")

	// stream ID -> target at NEW, and target -> stream ID.
	newTarget := map[string]string{}
	idOf := map[string]string{}
	next := func() *control.StreamEvent {
		for {
			select {
			case ev := <-observed:
				if se, ok := ev.(*control.StreamEvent); ok {
					t.Logf("tor STREAM %s", se.Raw)
					target := fmt.Sprintf("%s:%d", se.TargetAddress, se.TargetPort)
					if se.Status == "NEW" {
						newTarget[se.StreamID] = target
						idOf[target] = se.StreamID
					}
					return se
				}
			case err := <-done:
				t.Fatalf("resolver stopped: %v", err)
			case <-ctx.Done():
				t.Fatalf("timed out; streams %v", newTarget)
			}
		}
	}
	for idOf["example.bit:80"] == "" {
		next()
	}
	// The .bit lookup is held: a clearnet stream must still be attached,
	// which an offline Tor answers by failing it.
	open("www.example.com:443", "bob")
	for idOf["www.example.com:443"] == "" {
		next()
	}
	bitID, wwwID := idOf["example.bit:80"], idOf["www.example.com:443"]
	// Once ncspv says it attached a stream, Tor must agree: ATTACHSTREAM
	// on a stream that left CONTROLLER_WAIT answers 555.
	confirmAttached := func(id string) {
		t.Helper()
		for {
			select {
			case got := <-attachedLog:
				if got != id {
					continue
				}
				_, err := rt.Control.SendRequest("ATTACHSTREAM %s 0", id)
				if err == nil || !strings.Contains(err.Error(), "555") {
					t.Fatalf("Tor says stream %s was still waiting for a controller: %v", id, err)
				}
				return
			case <-ctx.Done():
				t.Fatalf("stream %s was never attached", id)
			}
		}
	}
	confirmAttached(wwwID)
	close(release)
	open("nonexistent.bit:80", "carol")
	// The .bit stream: redirected to the onion, then attached.
	for {
		status := rt.StreamStatus(t)
		// An attached onion stream waits for its descriptor; Tor shows
		// that as SENTCONNECT.
		if regexp.MustCompile(`(?m)^` + bitID + ` \w+ 0 ` + regexp.QuoteMeta(resolverOnion) + `:80$`).MatchString(status) {
			break
		}
		if strings.Contains(status, bitID+" ") && !strings.Contains(status, bitID+" NEW 0 example.bit:80") &&
			!strings.Contains(status, resolverOnion) {
			t.Fatalf("the .bit stream went elsewhere: %s", status)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("the .bit stream was never redirected: %s", status)
		}
	}
	confirmAttached(bitID)
	for {
		se := next()
		if se.StreamID != idOf["nonexistent.bit:80"] || se.Status != "FAILED" {
			continue
		}
		if se.TargetAddress != "nonexistent.bit" || se.Reason != "RESOLVEFAILED" {
			t.Fatalf("missing name's stream: %s", se.Raw)
		}
		break
	}
	mu.Lock()
	example, missing := isos["d/example"], isos["d/nonexistent"]
	mu.Unlock()
	if example == "" || missing == "" || example == missing {
		t.Fatalf("lookups did not carry distinct SOCKS credentials: example %q, nonexistent %q", example, missing)
	}

	rcancel()
	if err := <-done; err != nil {
		t.Fatalf("resolver exit: %v", err)
	}
	if v := rt.LeaveStreamsUnattached(t); v != "0" {
		t.Fatalf("after a clean exit __LeaveStreamsUnattached is %q, want 0 so Tor attaches streams itself", v)
	}
}

// testWriter logs through t and reports the stream IDs the resolver
// logged as attached.
type testWriter struct {
	t        *testing.T
	attached chan<- string
}

var attachedRE = regexp.MustCompile(`msg="attached stream" stream=(\S+)`)

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	if m := attachedRE.FindSubmatch(b); m != nil {
		w.attached <- string(m[1])
	}
	return len(b), nil
}

// TestRealTorControlSocket: the resolver through Tor's ControlSocket
// (--torcontrol unix:/path), as Debian's tor offers it.
func TestRealTorControlSocket(t *testing.T) {
	rt := tortest.StartRealTor(t)
	runResolverScenario(t, rt, "unix:"+rt.ControlSocket)
}

// TestRealTorExistingStreamLeftAlone: a .bit stream that Tor is handling
// itself before the resolver starts (listed NEW while it waits for a
// circuit) is Tor's: the resolver neither looks it up nor closes it, and
// at exit it puts __LeaveStreamsUnattached back to what it found.
func TestRealTorExistingStreamLeftAlone(t *testing.T) {
	rt := tortest.StartRealTor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := tor.ParseProxy(rt.SocksAddr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := p.Dialer(tor.Credentials{User: "early", Password: "pw"})(ctx, "tcp", "testsite.bit:80"); err == nil {
			c.Close()
		}
	}()
	id := ""
	for re := regexp.MustCompile(`(?m)^(\d+) \S+ \d+ testsite\.bit:80`); id == ""; {
		if m := re.FindStringSubmatch(rt.StreamStatus(t)); m != nil {
			id = m[1]
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the stream never appeared")
		case <-time.After(50 * time.Millisecond):
		}
	}
	var mu sync.Mutex
	looked := 0
	res := &tor.StreamResolver{Resolve: func(ctx context.Context, q, iso string) prop279.Answer {
		mu.Lock()
		looked++
		mu.Unlock()
		return prop279.Answer{Status: prop279.StatusNotRegistered, Result: `"x"`}
	}}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tor.RunControlResolver(rctx, tor.ControlOptions{Addr: rt.ControlAddr, Resolver: res}) }()
	for rt.LeaveStreamsUnattached(t) != "1" {
		select {
		case err := <-done:
			t.Fatalf("resolver stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(2 * time.Second) // what the resolver would do with it, it has done
	rcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if looked != 0 {
		t.Errorf("the resolver looked up a stream Tor owns %d times", looked)
	}
	if !regexp.MustCompile(`(?m)^` + id + ` `).MatchString(rt.StreamStatus(t)) {
		t.Errorf("stream %s is gone: %s", id, rt.StreamStatus(t))
	}
	if v := rt.LeaveStreamsUnattached(t); v != "0" {
		t.Errorf("__LeaveStreamsUnattached left at %s, found 0", v)
	}
}
