package tor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTorVersionBefore(t *testing.T) {
	min := [4]int{0, 4, 5, 1}
	for v, want := range map[string]bool{
		"0.4.4.8":                 true,
		"0.4.5.0-alpha-dev":       true,
		"0.3.5.16 (git-abc)":      true,
		"0.4.5.1-alpha":           false,
		"0.4.5.1-alpha (git-abc)": false,
		"0.4.9.11":                false,
		"0.5.0.0":                 false,
		"1.0":                     false, // unparsable: not reported as old
		"":                        false,
		"arti 1.2.0":              false,
	} {
		if got := torVersionBefore(v, min); got != want {
			t.Errorf("torVersionBefore(%q) = %v, want %v", v, got, want)
		}
	}
}

// fakeControlPort answers PROTOCOLINFO with the given Tor version and NULL
// auth, and records every other command.
func fakeControlPort(t *testing.T, version string) (addr string, seen func() []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return fakeControlPortOn(t, ln, version, "0", ""), recorded(t, ln)
}

var fakeSeen sync.Map // listener -> func() []string

func recorded(t *testing.T, ln net.Listener) func() []string {
	f, _ := fakeSeen.Load(ln)
	return f.(func() []string)
}

// fakeControlPortOn serves the fake control port on ln; leave is what
// GETCONF __LeaveStreamsUnattached answers, streams the lines of GETINFO
// stream-status.
func fakeControlPortOn(t *testing.T, ln net.Listener, version, leave, streams string) string {
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var cmds []string
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "PROTOCOLINFO"):
				fmt.Fprintf(c, "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor=%q\r\n250 OK\r\n", version)
			case strings.HasPrefix(line, "GETCONF"):
				mu.Lock()
				cmds = append(cmds, line)
				mu.Unlock()
				fmt.Fprintf(c, "250 __LeaveStreamsUnattached=%s\r\n", leave)
			case strings.HasPrefix(line, "GETINFO stream-status"):
				mu.Lock()
				cmds = append(cmds, line)
				mu.Unlock()
				fmt.Fprintf(c, "250+stream-status=\r\n%s.\r\n250 OK\r\n", streams)
			default:
				mu.Lock()
				cmds = append(cmds, line)
				mu.Unlock()
				fmt.Fprintf(c, "250 OK\r\n")
			}
		}
	}()
	fakeSeen.Store(ln, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), cmds...)
	})
	return ln.Addr().String()
}

// An old Tor never reports CONTROLLER_WAIT: the resolver must refuse to
// start rather than make Tor hold every stream.
func TestControlResolverRefusesOldTor(t *testing.T) {
	addr, seen := fakeControlPort(t, "0.4.4.8")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := RunControlResolver(ctx, ControlOptions{Addr: addr, Resolver: &StreamResolver{}})
	if !errors.Is(err, ErrControlPort) || !strings.Contains(err.Error(), "0.4.4.8") || !strings.Contains(err.Error(), "CONTROLLER_WAIT") {
		t.Fatalf("got %v, want an ErrControlPort naming the version and CONTROLLER_WAIT", err)
	}
	for _, c := range seen() {
		if strings.HasPrefix(c, "SETCONF") || strings.HasPrefix(c, "SETEVENTS") {
			t.Fatalf("sent %q to an old Tor", c)
		}
	}
}

// A recent Tor is accepted and the resolver gets as far as taking over.
func TestControlResolverAcceptsCurrentTor(t *testing.T) {
	addr, seen := fakeControlPort(t, "0.4.9.11")
	runUntilSet(t, addr, seen)
}

// runUntilSet runs the resolver until it has set __LeaveStreamsUnattached,
// then stops it and returns the commands it sent.
func runUntilSet(t *testing.T, addr string, seen func() []string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunControlResolver(ctx, ControlOptions{Addr: addr, Resolver: &StreamResolver{}}) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(seen(), "\n"), "SETCONF __LeaveStreamsUnattached=1") {
		if time.Now().After(deadline) {
			t.Fatalf("resolver never set __LeaveStreamsUnattached; sent %q", seen())
		}
		select {
		case err := <-done:
			t.Fatalf("resolver stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(100 * time.Millisecond) // what it would do with streams it found
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return seen()
}

// TestExistingStreamsLeftAlone: streams that exist when the resolver
// starts are Tor's own (listed NEW while they wait for a circuit) unless
// __LeaveStreamsUnattached was already 1; the resolver never closes,
// redirects or attaches them, and at exit it restores the setting it found
// (a torrc may have set 1).
func TestExistingStreamsLeftAlone(t *testing.T) {
	for _, leave := range []string{"0", "1"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		streams := ""
		if leave == "0" {
			streams = "7 NEW 0 testsite.bit:80\r\n8 NEW 0 example.com:443\r\n"
		}
		addr := fakeControlPortOn(t, ln, "0.4.9.11", leave, streams)
		cmds := runUntilSet(t, addr, recorded(t, ln))
		all := strings.Join(cmds, "\n")
		for _, c := range []string{"CLOSESTREAM", "REDIRECTSTREAM", "ATTACHSTREAM"} {
			if strings.Contains(all, c) {
				t.Errorf("leave=%s: sent %s to a stream Tor owns:\n%s", leave, c, all)
			}
		}
		var last string
		for _, c := range cmds {
			if strings.HasPrefix(c, "SETCONF __LeaveStreamsUnattached=") {
				last = c
			}
		}
		if last != "SETCONF __LeaveStreamsUnattached="+leave {
			t.Errorf("leave=%s: the last setting sent was %q, want the one found restored", leave, last)
		}
	}
}

// TestControlSocket: --torcontrol unix:/path reaches a ControlSocket (as
// Debian's tor offers), and a bad value is refused before anything else.
func TestControlSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	fakeControlPortOn(t, ln, "0.4.9.11", "0", "")
	runUntilSet(t, "unix:"+path, recorded(t, ln))
	for _, bad := range []string{"9051", "unix:relative/control", "localhost:port", ":9051"} {
		if _, _, err := ParseControlAddr(bad); !errors.Is(err, ErrControlPort) {
			t.Errorf("%q accepted", bad)
		}
	}
}
