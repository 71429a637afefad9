package prop279

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe output buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestSession(t *testing.T) {
	v := values{"d/a": `{"ip":"1.2.3.4"}`, "d/b": `{"map":{"_tor":{"txt":"` + onionA + `"}}}`}
	in := strings.Join([]string{
		"RESOLVE 1 a.bit stream-1",
		"RESOLVE 2 b.bit.onion stream-2",
		"RESOLVE 3 example.com stream-1",
		"RESOLVE 4 missing.bit",
		"BOGUS 9",
		"RESOLVE 5",
		"",
	}, "\n")
	var out syncBuffer
	if err := Serve(context.Background(), strings.NewReader(in), &out, v.lookup, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if lines[0] != "INIT 1 0" {
		t.Fatalf("first line %q", lines[0])
	}
	got := lines[1:]
	sort.Strings(got)
	want := []string{
		"RESOLVED 1 0 1.2.3.4",
		"RESOLVED 2 0 " + onionA,
		`RESOLVED 3 2 "example.com is not a Namecoin domain"`,
		`RESOLVED 4 3 "missing.bit is not registered"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("session:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCancelAndInterleaving: a slow query does not hold a fast one, and a
// cancelled query gets CANCELED and never RESOLVED.
func TestCancelAndInterleaving(t *testing.T) {
	release := make(chan struct{})
	lookup := func(ctx context.Context, name, _ string) ([]byte, error) {
		if name == "d/slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return []byte(`{"ip":"10.0.0.1"}`), nil
	}
	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), pr, &out, lookup, 5*time.Second, nil) }()
	write := func(s string) { pw.Write([]byte(s + "\n")) }
	waitFor := func(line string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			for _, l := range out.lines() {
				if l == line {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no %q in %q", line, out.lines())
	}
	write("RESOLVE 1 slow.bit s1")
	write("RESOLVE 2 slow.bit s2")
	write("RESOLVE 3 fast.bit s3")
	waitFor("RESOLVED 3 0 10.0.0.1") // 3 overtakes 1 and 2
	write("CANCEL 1")
	waitFor("CANCELED 1")
	close(release)
	waitFor("RESOLVED 2 0 10.0.0.1")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, l := range out.lines() {
		if strings.HasPrefix(l, "RESOLVED 1 ") {
			t.Fatalf("cancelled query answered: %q", l)
		}
	}
}

func TestTimeoutIsFailure(t *testing.T) {
	lookup := func(ctx context.Context, _, _ string) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var out syncBuffer
	Serve(context.Background(), strings.NewReader("RESOLVE 1 x.bit s\n"), &out, lookup, 50*time.Millisecond, nil)
	if l := out.lines(); len(l) != 2 || l[1] != `RESOLVED 1 1 "Server failure"` {
		t.Fatalf("timeout: %q", l)
	}
}

// TestServeEdges: a RESOLVE with fields past the stream ID is answered
// (ncprop279 ignores them); onion-only answers only with onion services;
// a failure's cause is logged at info without the name.
func TestServeEdges(t *testing.T) {
	v := values{
		"d/both":       `{"ip":"192.0.2.1","map":{"_tor":{"txt":"bothaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion"}}}`,
		"d/iponly":     `{"ip":"192.0.2.2"}`,
		"d/secretname": "",
	}
	var out bytes.Buffer
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	in := "RESOLVE 1 iponly.bit s1 extra=field\nRESOLVE 2 secretname.bit s1\n"
	if err := ServeWith(context.Background(), strings.NewReader(in), &out, v.lookup, time.Second, log, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "RESOLVED 1 0 192.0.2.1") && !strings.Contains(out.String(), "RESOLVED 1 0 192.0.2.2") {
		t.Errorf("RESOLVE with an extra field: %q", out.String())
	}
	if !strings.Contains(logs.String(), "Prop279 lookup failed") || strings.Contains(logs.String(), "secretname") {
		t.Errorf("failure log at info: %q", logs.String())
	}
	out.Reset()
	in = "RESOLVE 1 both.bit s\nRESOLVE 2 iponly.bit s\n"
	ServeWith(context.Background(), strings.NewReader(in), &out, v.lookup, time.Second, nil, Options{OnlyOnion: true})
	if !strings.Contains(out.String(), "RESOLVED 1 0 bothaaaa") || !strings.Contains(out.String(), `RESOLVED 2 3 "iponly.bit is not registered"`) {
		t.Errorf("onion only: %q", out.String())
	}
}
