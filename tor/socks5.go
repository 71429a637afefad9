package tor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// ErrNoIsolation: the proxy would not take SOCKS username/password
// authentication. Tor isolates streams by those credentials; a proxy that
// picks "no authentication" instead would put every lookup on one
// circuit, so ncspv refuses it rather than lose isolation silently.
var ErrNoIsolation = errors.New("the SOCKS proxy does not accept username/password authentication, which stream isolation needs")

// ErrNoCircuit: Tor took the connection but did not answer it in time:
// it has no circuit to build with, as right after boot before it has
// connected to the network (Tails and Whonix take a minute or two).
var ErrNoCircuit = errors.New("Tor has not built a circuit (is it connected to the network yet? right after boot this takes a minute or two)")

// ErrSOCKS is wrapped by every failure the proxy reports or causes in the
// SOCKS exchange itself.
var ErrSOCKS = errors.New("SOCKS proxy error")

// socksReplies are RFC 1928's reply codes, and Tor's extended ones
// (ExtendedErrors, tor's doc/socks-extensions).
var socksReplies = map[byte]string{
	1: "general failure", 2: "connection not allowed by ruleset",
	3: "network unreachable", 4: "host unreachable", 5: "connection refused",
	6: "TTL expired (Tor could not build a circuit in time: is it connected to the network yet?)", 7: "command not supported",
	8:    "address type not supported",
	0xf0: "onion service descriptor not found", 0xf1: "onion service descriptor invalid",
	0xf2: "onion service introduction failed", 0xf3: "onion service rendezvous failed",
	0xf4: "onion service missing client authorization", 0xf5: "onion service wrong client authorization",
	0xf6: "invalid onion service address", 0xf7: "onion service introduction timed out",
}

// errAwaitingConnect marks a failure while the proxy had the CONNECT.
var errAwaitingConnect = errors.New("no answer to CONNECT")

// SOCKSReplyError is a CONNECT the proxy answered with a failure code.
type SOCKSReplyError struct{ Code byte }

func (e *SOCKSReplyError) Error() string {
	if s, ok := socksReplies[e.Code]; ok {
		return "SOCKS proxy: " + s
	}
	return fmt.Sprintf("SOCKS proxy: reply code %#x", e.Code)
}

func (e *SOCKSReplyError) Unwrap() error { return ErrSOCKS }

// socksConnect runs the SOCKS5 exchange (RFC 1928, with RFC 1929
// username/password, the only method offered) on conn for addr, a host
// name or IP address with a port. A host name goes to the proxy
// unresolved. It gives up when ctx ends.
func socksConnect(ctx context.Context, conn net.Conn, addr string, c Credentials) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port in %q", addr)
	}
	if len(host) > 255 || len(c.User) == 0 || len(c.User) > 255 || len(c.Password) > 255 {
		return fmt.Errorf("%w: host name or credentials too long for SOCKS5", ErrSOCKS)
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
		defer conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = socksExchange(conn, host, uint16(port), c)
	// The connection's deadline is ctx's, and may fire a moment before
	// ctx reports it: a timeout is ctx's end either way.
	var ne net.Error
	timedOut := ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout())
	switch {
	case err == nil || !timedOut:
		return err
	case errors.Is(err, errAwaitingConnect):
		return fmt.Errorf("%w: %w", ErrNoCircuit, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
}

func socksExchange(conn net.Conn, host string, port uint16, c Credentials) error {
	// Greeting: version 5, one method, username/password (2).
	if _, err := conn.Write([]byte{5, 1, 2}); err != nil {
		return err
	}
	var r [2]byte
	if _, err := io.ReadFull(conn, r[:]); err != nil {
		return fmt.Errorf("%w: no answer to the greeting: %v", ErrSOCKS, err)
	}
	switch {
	case r[0] != 5:
		return fmt.Errorf("%w: version %d in the answer", ErrSOCKS, r[0])
	case r[1] != 2:
		return fmt.Errorf("%w (it chose method %#x)", ErrNoIsolation, r[1])
	}
	auth := append([]byte{1, byte(len(c.User))}, c.User...)
	auth = append(append(auth, byte(len(c.Password))), c.Password...)
	if _, err := conn.Write(auth); err != nil {
		return err
	}
	if _, err := io.ReadFull(conn, r[:]); err != nil {
		return fmt.Errorf("%w: no answer to the credentials: %v", ErrSOCKS, err)
	}
	if r[1] != 0 {
		return fmt.Errorf("%w: credentials refused (status %d)", ErrSOCKS, r[1])
	}

	req := []byte{5, 1, 0} // CONNECT
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			req = append(append(req, 1), ip.AsSlice()...)
		} else {
			req = append(append(req, 4), ip.AsSlice()...)
		}
	} else {
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var h [4]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrSOCKS, errAwaitingConnect, err)
	}
	if h[0] != 5 {
		return fmt.Errorf("%w: version %d in the CONNECT answer", ErrSOCKS, h[0])
	}
	if h[1] != 0 {
		return &SOCKSReplyError{Code: h[1]}
	}
	var skip int
	switch h[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return fmt.Errorf("%w: %v", ErrSOCKS, err)
		}
		skip = int(l[0])
	default:
		return fmt.Errorf("%w: address type %d in the CONNECT answer", ErrSOCKS, h[3])
	}
	if _, err := io.CopyN(io.Discard, conn, int64(skip+2)); err != nil {
		return fmt.Errorf("%w: %v", ErrSOCKS, err)
	}
	return nil
}
