package spv

import (
	"errors"
	"strings"
	"testing"

	"github.com/ncspv/ncspv/tor"
)

// TestNoServer: the proxy's failure is said once only when it is every
// server's failure; other causes keep each server's own error.
func TestNoServer(t *testing.T) {
	down := func(server string) error {
		return errors.Join(errors.New(server), &tor.ProxyUnreachableError{Proxy: "127.0.0.1:9050", Err: errors.New("connection refused")})
	}
	all := noServer([]error{down("ssl://a:1"), down("ssl://b:1")})
	if !errors.Is(all, ErrNoServer) || !errors.Is(all, tor.ErrProxyUnreachable) ||
		strings.Contains(all.Error(), "ssl://") || strings.Count(all.Error(), "127.0.0.1:9050") != 1 {
		t.Errorf("all behind a dead proxy: %v", all)
	}
	mixed := noServer([]error{down("ssl://a:1"), errors.New("ssl://b:1: certificate changed")})
	if !errors.Is(mixed, ErrNoServer) || !strings.Contains(mixed.Error(), "ssl://a:1") ||
		!strings.Contains(mixed.Error(), "certificate changed") {
		t.Errorf("mixed causes: %v", mixed)
	}
	if none := noServer(nil); !errors.Is(none, ErrNoServer) || none.Error() != ErrNoServer.Error() {
		t.Errorf("no servers: %v", none)
	}
}
