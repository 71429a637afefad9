package spv_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// TestTorNotRunning: with nothing listening on the proxy port, every
// server fails for that one reason, and sync and lookups say so once,
// not once per server.
func TestTorNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := ln.Addr().String()
	ln.Close()

	var servers []electrumx.Server
	for _, s := range []string{"ssl://aaaa.onion:50002", "ssl://bbbb.onion:50002", "tcp://cccc.example:50001"} {
		srv, err := electrumx.ParseServer(s)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
	}
	e, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams, Servers: servers, QueryServers: 2,
		Router: tor.NewRouter(tor.Proxy{Network: "tcp", Address: proxyAddr})})

	syncErr := e.Sync(context.Background())
	_, lookupErr := e.NameShow(context.Background(), []byte("d/x"), spv.LookupOptions{StreamID: "s"})
	for what, err := range map[string]error{"sync": syncErr, "lookup": lookupErr} {
		var pe *tor.ProxyUnreachableError
		if !errors.Is(err, spv.ErrNoServer) || !errors.Is(err, tor.ErrProxyUnreachable) || !errors.As(err, &pe) {
			t.Fatalf("%s: %v", what, err)
		}
		msg := err.Error()
		if pe.Proxy != proxyAddr || !strings.Contains(msg, "is Tor running?") {
			t.Errorf("%s: %q does not name proxy %s and ask whether Tor runs", what, msg, proxyAddr)
		}
		for _, s := range servers {
			if strings.Contains(msg, s.Host) {
				t.Errorf("%s: the one cause is repeated per server: %q", what, msg)
			}
		}
	}
}
