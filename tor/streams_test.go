package tor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/prop279"
)

func TestParseStreamEvent(t *testing.T) {
	tests := []struct {
		line string
		want StreamEvent
		err  error
	}{
		{`12 NEW 0 example.bit:80 SOURCE_ADDR=127.0.0.1:5555 PURPOSE=USER SOCKS_USERNAME="a b" SOCKS_PASSWORD="p\"w"`,
			StreamEvent{ID: "12", Status: "NEW", CircuitID: "0", Host: "example.bit", Port: 80, Purpose: "USER",
				SOCKSUsername: "a b", SOCKSPassword: `p"w`}, nil},
		{`7 NEWRESOLVE 0 www.example.com:0 PURPOSE=DNS_REQUEST`,
			StreamEvent{ID: "7", Status: "NEWRESOLVE", CircuitID: "0", Host: "www.example.com", Purpose: "DNS_REQUEST"}, nil},
		{`9 DETACHED 3 [2001:db8::1]:443 REASON=TIMEOUT`,
			StreamEvent{ID: "9", Status: "DETACHED", CircuitID: "3", Host: "2001:db8::1", Port: 443}, nil},
		{`12 NEW 0 example.bit`, StreamEvent{}, ErrBadStreamEvent},
		{`12 NEW 0 :80`, StreamEvent{}, ErrBadStreamEvent},
		{`12 NEW 0 example.bit:99999`, StreamEvent{}, ErrBadStreamEvent},
		{`12 NEW 0`, StreamEvent{}, ErrBadStreamEvent},
		{`12 NEW 0 example.bit:80 SOCKS_USERNAME="open`, StreamEvent{}, ErrBadStreamEvent},
	}
	for _, tc := range tests {
		got, err := ParseStreamEvent(tc.line)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err %v, want %v", tc.line, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

func FuzzParseStreamEvent(f *testing.F) {
	f.Add(`12 NEW 0 example.bit:80 PURPOSE=USER SOCKS_USERNAME="a b" SOCKS_PASSWORD="p\"w"`)
	f.Add(`9 DETACHED 3 [2001:db8::1]:443 REASON=TIMEOUT`)
	f.Fuzz(func(t *testing.T, line string) {
		ev, err := ParseStreamEvent(line)
		if err != nil {
			if !errors.Is(err, ErrBadStreamEvent) {
				t.Fatalf("error %v is not ErrBadStreamEvent", err)
			}
			return
		}
		if ev.ID == "" || ev.Status == "" || ev.Host == "" || ev.Port < 0 || ev.Port > 65535 {
			t.Fatalf("accepted an incomplete event %+v from %q", ev, line)
		}
	})
}

// fakeControl records the commands a resolver sends, in order.
type fakeControl struct {
	mu   sync.Mutex
	cmds []string
	// redirectErr makes REDIRECTSTREAM fail, as Tor does for a stream
	// that is gone.
	redirectErr error
	changed     chan struct{}
}

func newFakeControl() *fakeControl { return &fakeControl{changed: make(chan struct{}, 100)} }

func (f *fakeControl) record(s string) {
	f.mu.Lock()
	f.cmds = append(f.cmds, s)
	f.mu.Unlock()
	f.changed <- struct{}{}
}
func (f *fakeControl) AttachStream(id string) error {
	f.record("ATTACHSTREAM " + id + " 0")
	return nil
}
func (f *fakeControl) RedirectStream(id, host string) error {
	f.record("REDIRECTSTREAM " + id + " " + host)
	return f.redirectErr
}
func (f *fakeControl) CloseStream(id string, reason int) error {
	f.record(fmt.Sprintf("CLOSESTREAM %s %d", id, reason))
	return nil
}
func (f *fakeControl) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

// waitFor waits until n commands were sent.
func (f *fakeControl) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if c := f.commands(); len(c) >= n {
			return c
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("waited for %d commands, got %q", n, f.commands())
		}
	}
}

const testOnion = "dhflg7a7etr77hwt4eerwoovhg7b5bivt2jem4366dt4psgnl5diyiyd.onion"

// lookupStub answers d/example with an onion and everything else as not
// found, recording isolation IDs and optionally holding lookups.
type lookupStub struct {
	mu    sync.Mutex
	isos  []string
	hold  chan struct{}
	calls chan string
}

func (l *lookupStub) resolve(ctx context.Context, q, iso string) prop279.Answer {
	return prop279.Resolve(ctx, func(ctx context.Context, name, stream string) ([]byte, error) {
		l.mu.Lock()
		l.isos = append(l.isos, stream)
		l.mu.Unlock()
		if l.calls != nil {
			l.calls <- name
		}
		if l.hold != nil {
			select {
			case <-l.hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if name == "d/example" {
			return []byte(`{"map":{"_tor":{"txt":"` + testOnion + `"}}}`), nil
		}
		return nil, prop279.ErrNotFound
	}, q, iso)
}

func TestStreamResolverRedirectsBitAndAttachesOthersAtOnce(t *testing.T) {
	fc := newFakeControl()
	ls := &lookupStub{hold: make(chan struct{}), calls: make(chan string, 10)}
	r := &StreamResolver{Ctrl: fc, Resolve: ls.resolve}
	ctx := context.Background()
	r.Handle(ctx, StreamEvent{ID: "1", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80, SOCKSUsername: "u1", SOCKSPassword: "p"})
	<-ls.calls // the .bit lookup is in flight and held
	r.Handle(ctx, StreamEvent{ID: "2", Status: "CONTROLLER_WAIT", Host: "www.example.com", Port: 443})
	if got := fc.waitFor(t, 1); got[0] != "ATTACHSTREAM 2 0" {
		t.Fatalf("a non-.bit stream waited for a .bit lookup: %q", got)
	}
	close(ls.hold)
	r.Wait()
	want := []string{"ATTACHSTREAM 2 0", "REDIRECTSTREAM 1 " + testOnion, "ATTACHSTREAM 1 0"}
	if got := fc.commands(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("commands %q, want %q", got, want)
	}
}

func TestStreamResolverClosesUnknownNames(t *testing.T) {
	fc := newFakeControl()
	r := &StreamResolver{Ctrl: fc, Resolve: (&lookupStub{}).resolve}
	r.Handle(context.Background(), StreamEvent{ID: "5", Status: "CONTROLLER_WAIT", Host: "nonexistent.bit", Port: 80})
	r.Handle(context.Background(), StreamEvent{ID: "6", Status: "CONTROLLER_WAIT", Host: "example.bit.onion", Port: 80})
	r.Wait()
	got := strings.Join(fc.commands(), "|")
	for _, want := range []string{"CLOSESTREAM 5 2", "REDIRECTSTREAM 6 " + testOnion} {
		if !strings.Contains(got, want) {
			t.Errorf("commands %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "ATTACHSTREAM 5") || strings.Contains(got, "REDIRECTSTREAM 5") {
		t.Fatalf("a stream for a missing name was attached or redirected: %q", got)
	}
}

func TestStreamResolverLeavesOtherEventsAlone(t *testing.T) {
	fc := newFakeControl()
	ls := &lookupStub{}
	r := &StreamResolver{Ctrl: fc, Resolve: ls.resolve}
	ctx := context.Background()
	// Streams not in CONTROLLER_WAIT for the first time: never redirected.
	for _, st := range []string{"NEW", "SENTCONNECT", "SUCCEEDED", "REMAP", "SENTRESOLVE", "FAILED", "CLOSED"} {
		r.Handle(ctx, StreamEvent{ID: "9", Status: st, Host: "example.bit", Port: 80})
	}
	r.Wait()
	if got := fc.commands(); len(got) != 0 || len(ls.isos) != 0 {
		t.Fatalf("acted on streams it did not see in CONTROLLER_WAIT: %q, lookups %d", got, len(ls.isos))
	}
	// A detached stream was handled before: attach again, no new lookup.
	r.Handle(ctx, StreamEvent{ID: "10", Status: "DETACHED", Host: testOnion, Port: 80})
	// A SOCKS RESOLVE of a .bit name has no address answer for an onion.
	// (Tor's own directory streams are NEW too, and must not be attached.)
	r.Handle(ctx, StreamEvent{ID: "11", Status: "NEWRESOLVE", Host: "example.bit"})
	r.Handle(ctx, StreamEvent{ID: "11", Status: "CONTROLLER_WAIT", Host: "example.bit"})
	r.Handle(ctx, StreamEvent{ID: "12", Status: "NEWRESOLVE", Host: "www.example.com"})
	r.Handle(ctx, StreamEvent{ID: "12", Status: "CONTROLLER_WAIT", Host: "www.example.com"})
	r.Wait()
	want := []string{"ATTACHSTREAM 10 0", "CLOSESTREAM 11 2", "ATTACHSTREAM 12 0"}
	if got := fc.commands(); strings.Join(got, "|") != strings.Join(want, "|") || len(ls.isos) != 0 {
		t.Fatalf("commands %q (lookups %d), want %q and no lookup", got, len(ls.isos), want)
	}
}

func TestStreamResolverDropsStreamsClosedDuringLookup(t *testing.T) {
	fc := newFakeControl()
	ls := &lookupStub{hold: make(chan struct{}), calls: make(chan string, 10)}
	r := &StreamResolver{Ctrl: fc, Resolve: ls.resolve}
	ctx := context.Background()
	r.Handle(ctx, StreamEvent{ID: "3", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80})
	<-ls.calls
	r.Handle(ctx, StreamEvent{ID: "3", Status: "CLOSED", Host: "example.bit", Port: 80})
	close(ls.hold)
	r.Wait()
	if got := fc.commands(); len(got) != 0 {
		t.Fatalf("redirected a stream Tor had closed: %q", got)
	}
}

func TestStreamResolverClosesWhenRedirectFails(t *testing.T) {
	fc := newFakeControl()
	fc.redirectErr = errors.New("552 Unknown stream")
	r := &StreamResolver{Ctrl: fc, Resolve: (&lookupStub{}).resolve}
	r.Handle(context.Background(), StreamEvent{ID: "4", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80})
	r.Wait()
	want := []string{"REDIRECTSTREAM 4 " + testOnion, "CLOSESTREAM 4 2"}
	if got := fc.commands(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("commands %q, want %q", got, want)
	}
}

func TestStreamResolverIsolatesBySOCKSCredentials(t *testing.T) {
	fc := newFakeControl()
	ls := &lookupStub{}
	r := &StreamResolver{Ctrl: fc, Resolve: ls.resolve}
	ctx := context.Background()
	r.Handle(ctx, StreamEvent{ID: "1", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80, SOCKSUsername: "a", SOCKSPassword: "x"})
	r.Handle(ctx, StreamEvent{ID: "2", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80, SOCKSUsername: "b", SOCKSPassword: "x"})
	// "a:b"+"" and "a"+":b" must not collide.
	r.Handle(ctx, StreamEvent{ID: "3", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80, SOCKSUsername: "a:b"})
	r.Handle(ctx, StreamEvent{ID: "4", Status: "CONTROLLER_WAIT", Host: "example.bit", Port: 80, SOCKSUsername: "a", SOCKSPassword: ":b"})
	r.Wait()
	seen := map[string]bool{}
	for _, iso := range ls.isos {
		seen[iso] = true
	}
	if len(ls.isos) != 4 || len(seen) != 4 || seen[""] {
		t.Fatalf("isolation IDs %q: want four distinct non-empty IDs", ls.isos)
	}
}
