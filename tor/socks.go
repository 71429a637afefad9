// Package tor dials through Tor's SOCKS port with stream isolation: every
// lookup stream ID gets its own SOCKS credentials, and so its own Tor
// circuit (Tor's IsolateSOCKSAuth, on by default), while header sync uses
// credentials of its own. Nothing here ever dials around the proxy unless
// the caller explicitly configured "none".
package tor

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Proxy is where Tor's SOCKS port listens, or Direct.
type Proxy struct {
	// Network is "tcp" or "unix"; empty means no proxy (direct dialing).
	Network string
	Address string
}

// Direct is the explicit "no proxy" setting (--proxy=none).
var Direct = Proxy{}

// IsDirect reports whether connections go out without a proxy.
func (p Proxy) IsDirect() bool { return p.Network == "" }

func (p Proxy) String() string {
	switch p.Network {
	case "":
		return "none"
	case "unix":
		return "unix:" + p.Address
	}
	return p.Address
}

// DefaultProxy is Tor's usual SOCKS port.
var DefaultProxy = Proxy{Network: "tcp", Address: "127.0.0.1:9050"}

// ParseProxy reads a --proxy value: "none", "host:port", "unix:/path" or an
// absolute socket path.
func ParseProxy(s string) (Proxy, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "none":
		return Direct, nil
	case strings.HasPrefix(s, "unix:"):
		path := strings.TrimPrefix(s, "unix:")
		if !filepath.IsAbs(path) {
			return Proxy{}, fmt.Errorf("proxy %q: unix socket path must be absolute", s)
		}
		return Proxy{Network: "unix", Address: path}, nil
	case filepath.IsAbs(s):
		return Proxy{Network: "unix", Address: s}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return Proxy{}, fmt.Errorf("proxy %q: want host:port, unix:/path or none", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Proxy{}, fmt.Errorf("proxy %q: bad port", s)
	}
	return Proxy{Network: "tcp", Address: s}, nil
}

// ProxyFromEnv reads Tor Browser's variables, as Electrum-NMC does:
// TOR_SOCKS_IPC_PATH (a unix socket) wins over TOR_SOCKS_HOST and
// TOR_SOCKS_PORT. ok is false when none is set.
func ProxyFromEnv(getenv func(string) string) (p Proxy, ok bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if path := getenv("TOR_SOCKS_IPC_PATH"); path != "" {
		if !filepath.IsAbs(path) {
			return Proxy{}, false, fmt.Errorf("TOR_SOCKS_IPC_PATH %q is not absolute", path)
		}
		return Proxy{Network: "unix", Address: path}, true, nil
	}
	host, port := getenv("TOR_SOCKS_HOST"), getenv("TOR_SOCKS_PORT")
	if host == "" && port == "" {
		return Proxy{}, false, nil
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "9050"
	}
	p, err = ParseProxy(net.JoinHostPort(host, port))
	if err != nil {
		return Proxy{}, false, fmt.Errorf("TOR_SOCKS_HOST/TOR_SOCKS_PORT: %w", err)
	}
	return p, true, nil
}

// Credentials are the SOCKS5 username and password of one isolation group.
// Tor puts streams with different credentials on different circuits.
type Credentials struct {
	User, Password string
}

// Key identifies the isolation group, for keying connections.
func (c Credentials) Key() string { return c.User + ":" + c.Password }

// Isolator derives credentials. Equal stream IDs get equal credentials
// within one process; different IDs never share them; nothing derived here
// can be linked to the stream ID without the per-process key.
type Isolator struct {
	key [32]byte
}

// NewIsolator makes an isolator with a fresh random key.
func NewIsolator() *Isolator {
	var i Isolator
	if _, err := rand.Read(i.key[:]); err != nil {
		panic("tor: no randomness: " + err.Error())
	}
	return &i
}

func (i *Isolator) derive(domain, id string) Credentials {
	m := hmac.New(sha256.New, i.key[:])
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(id))
	sum := m.Sum(nil)
	return Credentials{User: hex.EncodeToString(sum[:16]), Password: hex.EncodeToString(sum[16:])}
}

// ForStream returns the credentials of a lookup stream ID. An empty ID
// gets fresh random credentials, so anonymous lookups share nothing.
func (i *Isolator) ForStream(streamID string) Credentials {
	if streamID == "" {
		return Fresh()
	}
	return i.derive("stream", streamID)
}

// ForSync returns the credentials of header sync and other background work.
func (i *Isolator) ForSync() Credentials { return i.derive("sync", "") }

// ForAnonymous returns the credentials lookups without a stream ID share
// within scope (ncspv uses one scope per server): a circuit of their own,
// never the sync's and never a stream's, kept as a namecoind backend
// would keep its one connection, instead of a new circuit per lookup.
func (i *Isolator) ForAnonymous(scope string) Credentials { return i.derive("anonymous", scope) }

// Fresh returns random credentials that nothing else uses.
func Fresh() Credentials {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("tor: no randomness: " + err.Error())
	}
	return Credentials{User: hex.EncodeToString(b[:16]), Password: hex.EncodeToString(b[16:])}
}

// DialFunc opens a connection; it is what the ElectrumX client uses.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrNotTCP is returned for anything but a TCP target.
var ErrNotTCP = errors.New("only TCP connections go through the proxy")

// ErrProxyUnreachable is matched (errors.Is) by a dial that failed
// because the SOCKS proxy itself could not be reached: every server fails
// the same way, so callers can say it once.
var ErrProxyUnreachable = errors.New("SOCKS proxy unreachable")

// ProxyUnreachableError is a failed connection to the proxy itself, not a
// failure the proxy reported for the target.
type ProxyUnreachableError struct {
	Proxy string
	Err   error
}

func (e *ProxyUnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Tor SOCKS proxy %s (is Tor running? --proxy sets where it listens): %v", e.Proxy, e.Err)
}

func (e *ProxyUnreachableError) Unwrap() []error { return []error{ErrProxyUnreachable, e.Err} }

// proxyDialer connects to the proxy and marks a failure to do so.
type proxyDialer struct {
	net.Dialer
	proxy string
}

func (d *proxyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &ProxyUnreachableError{Proxy: d.proxy, Err: err}
	}
	return c, nil
}

// Dialer returns the dial function for one isolation group. Through a
// proxy, host names (.onion included) are sent to the proxy unresolved;
// no local DNS lookup happens. With Direct, it dials plainly.
func (p Proxy) Dialer(c Credentials) DialFunc {
	if p.IsDirect() {
		var d net.Dialer
		return d.DialContext
	}
	forward := &proxyDialer{proxy: p.String()}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil, fmt.Errorf("%w: %s %s", ErrNotTCP, network, addr)
		}
		conn, err := forward.DialContext(ctx, p.Network, p.Address)
		if err != nil {
			return nil, err
		}
		if err := socksConnect(ctx, conn, addr, c); err != nil {
			conn.Close()
			return nil, fmt.Errorf("via Tor SOCKS proxy %s: %w", p, err)
		}
		return conn, nil
	}
}

// Router hands out the dial function and connection key of each isolation
// group: per stream ID, for sync, and fresh for anonymous lookups.
type Router struct {
	Proxy    Proxy
	Isolator *Isolator
}

// NewRouter routes through p with a fresh isolator.
func NewRouter(p Proxy) *Router { return &Router{Proxy: p, Isolator: NewIsolator()} }

// Group is one isolation group: connections with the same Key may be
// shared; Dial opens new ones with the group's credentials.
type Group struct {
	Key  string
	Dial DialFunc
}

func (r *Router) group(c Credentials) Group {
	return Group{Key: c.Key(), Dial: r.Proxy.Dialer(c)}
}

// ForStream is the group of a lookup stream ID ("" = fresh, unshared).
func (r *Router) ForStream(streamID string) Group { return r.group(r.Isolator.ForStream(streamID)) }

// ForAnonymous is the group of lookups without a stream ID in scope.
func (r *Router) ForAnonymous(scope string) Group { return r.group(r.Isolator.ForAnonymous(scope)) }

// ForSync is the group of header sync.
func (r *Router) ForSync() Group { return r.group(r.Isolator.ForSync()) }
