package tor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
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
				fmt.Fprintf(c, "250 __LeaveStreamsUnattached=0\r\n")
			default:
				mu.Lock()
				cmds = append(cmds, line)
				mu.Unlock()
				fmt.Fprintf(c, "250 OK\r\n")
			}
		}
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), cmds...)
	}
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
	cancel()
	<-done
}
