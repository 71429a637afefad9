// Package electrumx is a client for the ElectrumX protocol as Namecoin
// servers speak it: newline-delimited JSON-RPC 2.0 over TCP or TLS, with
// batches, notifications and per-call deadlines. It dials only through the
// DialFunc it is given (Tor, in production) and trusts nothing a server
// sends beyond its framing: callers verify the contents.
package electrumx

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Protocol versions ncspv speaks. 1.4.1 truncates AuxPoW under cp_height;
// 1.4.3 adds blockchain.name.get_value_proof.
const (
	ProtocolMin = "1.4.1"
	ProtocolMax = "1.4.3"
)

// DefaultMaxLine caps one reply line. ElectrumX sends at most 10 MB per
// message for Namecoin (a 2016-header AuxPoW chunk is ~7 MB of hex).
const DefaultMaxLine = 16 << 20

// Errors a call can end with, matched with errors.Is. Server-side errors
// are *RPCError.
var (
	ErrClosed              = errors.New("connection to the server is closed")
	ErrReplyTooLarge       = errors.New("server reply exceeds the size limit")
	ErrProtocol            = errors.New("server broke the JSON-RPC protocol")
	ErrBadReply            = errors.New("server reply has the wrong shape")
	ErrUnsupportedProtocol = errors.New("server does not speak protocol 1.4.1-1.4.3")
	ErrNotSupported        = errors.New("method needs a newer protocol than the server agreed")
	// ErrStalled: the server did not finish the connection's handshake
	// (connect, TLS, server.version) within Config.HandshakeTimeout.
	ErrStalled = errors.New("server did not answer in time")
)

// DefaultHandshakeTimeout bounds connecting, TLS and server.version
// together. Through Tor a new circuit to an onion server (build plus
// rendezvous) takes seconds, rarely more than half a minute.
const DefaultHandshakeTimeout = 45 * time.Second

// RPCError is an error object returned by the server.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("server error %d: %s", e.Code, e.Message) }

// DialFunc opens the raw TCP connection (through Tor's SOCKS port in
// production).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config is what a client needs to connect.
type Config struct {
	// Dial reaches the server. Required: the client never dials by itself.
	Dial DialFunc
	// Pins checks TLS certificates; required for ssl:// servers.
	Pins *PinStore
	// ClientName is sent in server.version.
	ClientName string
	// MaxLine caps one reply line (default DefaultMaxLine).
	MaxLine int
	// HandshakeTimeout bounds the dial, the TLS handshake and
	// server.version (default DefaultHandshakeTimeout): a server that
	// accepts the connection and says nothing fails with ErrStalled.
	HandshakeTimeout time.Duration
	// Logger receives debug lines; nil is silent.
	Logger *slog.Logger
}

// Client is one connection to one server. It is safe for concurrent use;
// replies are matched to calls by id, in any order.
type Client struct {
	server Server
	conn   net.Conn
	log    *slog.Logger
	max    atomic.Int64 // bytes one reply line may have

	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan reply
	subs    map[string][]chan json.RawMessage

	closed   chan struct{}
	closeErr error

	software, protocol string
}

type reply struct {
	result json.RawMessage
	hex    []byte // a streamed hex member, decoded (see readHexReply)
	err    error
}

// Dial connects to server, negotiates the protocol and returns the client.
func Dial(ctx context.Context, server Server, cfg Config) (*Client, error) {
	if cfg.Dial == nil {
		return nil, errors.New("electrumx: no dial function configured")
	}
	if server.TLS && cfg.Pins == nil {
		return nil, errors.New("electrumx: TLS server without a certificate pin store")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	c, err := dialAndNegotiate(hctx, server, cfg)
	var ne net.Error
	timedOut := hctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	if err != nil && ctx.Err() == nil && timedOut {
		return nil, fmt.Errorf("%w: %s: no handshake within %v: %w", ErrStalled, server, cfg.HandshakeTimeout, err)
	}
	return c, err
}

func dialAndNegotiate(ctx context.Context, server Server, cfg Config) (*Client, error) {
	conn, err := cfg.Dial(ctx, "tcp", server.Addr())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", server, err)
	}
	if server.TLS {
		tc := tls.Client(conn, cfg.Pins.tlsConfig(server))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", server, err)
		}
		conn = tc
	}
	c := newClient(server, conn, cfg)
	if err := c.negotiate(ctx, cfg.ClientName); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(server Server, conn net.Conn, cfg Config) *Client {
	c := &Client{
		server:  server,
		conn:    conn,
		log:     cfg.Logger,
		pending: map[uint64]chan reply{},
		subs:    map[string][]chan json.RawMessage{},
		closed:  make(chan struct{}),
	}
	c.SetMaxLine(cfg.MaxLine)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	go c.readLoop()
	return c
}

var supportedProtocols = []string{"1.4.1", "1.4.2", "1.4.3"}

func (c *Client) negotiate(ctx context.Context, name string) error {
	if name == "" {
		name = "ncspv"
	}
	var res []string
	err := c.Call(ctx, "server.version", []any{name, []string{ProtocolMin, ProtocolMax}}, &res)
	if err != nil {
		return fmt.Errorf("server.version with %s: %w", c.server, err)
	}
	if len(res) != 2 || !slices.Contains(supportedProtocols, res[1]) {
		return fmt.Errorf("%w: %s answered %q", ErrUnsupportedProtocol, c.server, res)
	}
	c.software, c.protocol = res[0], res[1]
	return nil
}

// SetMaxLine caps the reply lines read from now on (n <= 0:
// DefaultMaxLine). A caller that knows how large its replies can honestly
// be (the header sync) sets a tighter cap, so that a hostile server's
// reply costs no more memory than an honest one could.
func (c *Client) SetMaxLine(n int) {
	if n <= 0 {
		n = DefaultMaxLine
	}
	c.max.Store(int64(n))
}

// Server is the server this client talks to.
func (c *Client) Server() Server { return c.server }

// Protocol is the protocol version agreed with the server.
func (c *Client) Protocol() string { return c.protocol }

// ServerSoftware is what the server called itself (e.g. "ElectrumX 1.20.0").
func (c *Client) ServerSoftware() string { return c.software }

// HasValueProof reports whether blockchain.name.get_value_proof is
// available (protocol 1.4.3).
func (c *Client) HasValueProof() bool { return c.protocol == "1.4.3" }

// Done is closed when the connection ends; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.closed }

// Err is why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	select {
	case <-c.closed:
		return c.closeErr
	default:
		return nil
	}
}

// Close ends the connection; pending calls fail with ErrClosed.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return nil
}

// fail ends the connection once, failing every pending call with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return
	default:
	}
	c.closeErr = err
	close(c.closed)
	subs := c.subs
	c.subs = map[string][]chan json.RawMessage{}
	c.mu.Unlock()
	c.conn.Close()
	for _, chans := range subs {
		for _, ch := range chans {
			close(ch)
		}
	}
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
	ID      uint64 `json:"id"`
}

// register reserves an id and its reply channel before the request is
// written, so that no reply can arrive unclaimed.
func (c *Client) register() (uint64, chan reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return 0, nil, c.closeErr
	default:
	}
	c.nextID++
	ch := make(chan reply, 1)
	c.pending[c.nextID] = ch
	return c.nextID, ch, nil
}

func (c *Client) unregister(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	b = append(b, '\n')
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	_ = c.conn.SetWriteDeadline(deadline)
	if _, err := c.conn.Write(b); err != nil {
		// A partial write leaves the stream unusable.
		c.fail(fmt.Errorf("%w: write to %s: %v", ErrClosed, c.server, err))
		return c.Err()
	}
	return nil
}

// Call sends one request and decodes its result into result (which may be
// nil). It returns when the reply arrives, ctx ends or the connection does.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	raw, err := c.call(ctx, method, params)
	if err != nil {
		return err
	}
	return decodeResult(method, raw, result)
}

func decodeResult(method string, raw json.RawMessage, result any) error {
	if result == nil {
		return nil
	}
	if rm, ok := result.(*json.RawMessage); ok {
		// Handed over as is: the caller decodes (and so validates) it,
		// without a copy and a validating pass over megabytes of hex.
		*rm = raw
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadReply, method, err)
	}
	return nil
}

func (c *Client) call(ctx context.Context, method string, params []any) (json.RawMessage, error) {
	r, _, err := c.callHex(ctx, method, params)
	return r, err
}

// callHex is call that also returns a hex member decoded while the reply
// was read (nil when the reply did not take that path).
func (c *Client) callHex(ctx context.Context, method string, params []any) (json.RawMessage, []byte, error) {
	if params == nil {
		params = []any{}
	}
	id, ch, err := c.register()
	if err != nil {
		return nil, nil, err
	}
	defer c.unregister(id)
	if err := c.write(ctx, request{"2.0", method, params, id}); err != nil {
		return nil, nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, nil, fmt.Errorf("%s: %w", method, r.err)
		}
		return r.result, r.hex, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%s to %s: %w", method, c.server, ctx.Err())
	case <-c.closed:
		return nil, nil, fmt.Errorf("%s: %w", method, c.closeErr)
	}
}

// BatchCall is one request of a batch; Err and Result are filled in.
type BatchCall struct {
	Method string
	Params []any
	Result any   // decoded into, if not nil
	Err    error // the server's error or a decoding error for this call
}

// Batch sends calls as one JSON-RPC batch (one line, one round trip) and
// waits for every reply. The returned error is a transport or context
// error; per-call failures are in each BatchCall.Err.
func (c *Client) Batch(ctx context.Context, calls []*BatchCall) error {
	if len(calls) == 0 {
		return nil
	}
	reqs := make([]request, len(calls))
	chans := make([]chan reply, len(calls))
	for i, bc := range calls {
		id, ch, err := c.register()
		if err != nil {
			return err
		}
		defer c.unregister(id)
		params := bc.Params
		if params == nil {
			params = []any{}
		}
		reqs[i], chans[i] = request{"2.0", bc.Method, params, id}, ch
	}
	if err := c.write(ctx, reqs); err != nil {
		return err
	}
	for i, ch := range chans {
		select {
		case r := <-ch:
			if r.err != nil {
				calls[i].Err = fmt.Errorf("%s: %w", calls[i].Method, r.err)
				continue
			}
			calls[i].Err = decodeResult(calls[i].Method, r.result, calls[i].Result)
		case <-ctx.Done():
			return fmt.Errorf("batch to %s: %w", c.server, ctx.Err())
		case <-c.closed:
			return fmt.Errorf("batch: %w", c.closeErr)
		}
	}
	return nil
}

// subscribe registers a channel for notifications of method. The channel
// is closed when the connection ends.
func (c *Client) subscribe(method string, buf int) (chan json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return nil, c.closeErr
	default:
	}
	ch := make(chan json.RawMessage, buf)
	c.subs[method] = append(c.subs[method], ch)
	return ch, nil
}

func (c *Client) readLoop() {
	r := bufio.NewReaderSize(c.conn, 16<<10)
	for {
		var line, hexBody []byte
		isHex, err := startsHexReply(r)
		if err == nil {
			if isHex {
				line, hexBody, err = readHexReply(r, int(c.max.Load()))
			} else {
				line, err = readLine(r, int(c.max.Load()))
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %s hung up", ErrClosed, c.server)
			} else if errors.Is(err, ErrReplyTooLarge) || errors.Is(err, ErrProtocol) {
				err = fmt.Errorf("%s: %w", c.server, err)
			} else {
				err = fmt.Errorf("%w: read from %s: %v", ErrClosed, c.server, err)
			}
			c.fail(err)
			return
		}
		if len(line) == 0 {
			continue
		}
		if err := c.dispatch(line, hexBody); err != nil {
			c.fail(err)
			return
		}
	}
}

// readLine reads one newline-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("%w: more than %d bytes without a newline", ErrReplyTooLarge, max)
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return bytes.TrimSpace(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

type message struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	hex    []byte
}

func (c *Client) dispatch(line, hexBody []byte) error {
	if line[0] == '[' {
		var msgs []message
		if err := json.Unmarshal(line, &msgs); err != nil {
			return fmt.Errorf("%w: %s sent an invalid batch: %v", ErrProtocol, c.server, err)
		}
		for i := range msgs {
			if err := c.deliver(&msgs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	// One fast pass over the envelope: results can be megabytes of hex,
	// which the caller's decoder validates.
	fields, err := scanObject(line)
	if err != nil {
		return fmt.Errorf("%w: %s sent invalid JSON: %v", ErrProtocol, c.server, err)
	}
	m := message{ID: fields["id"], Result: fields["result"], Error: fields["error"], Params: fields["params"], hex: hexBody}
	if raw, ok := fields["method"]; ok {
		if err := json.Unmarshal(raw, &m.Method); err != nil {
			return fmt.Errorf("%w: %s sent a bad method name: %v", ErrProtocol, c.server, err)
		}
	}
	return c.deliver(&m)
}

func (c *Client) deliver(m *message) error {
	if m.Method != "" && (len(m.ID) == 0 || string(m.ID) == "null") {
		c.notify(m.Method, m.Params)
		return nil
	}
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	if err != nil {
		// ElectrumX answers requests it cannot parse with id null.
		if rerr := decodeRPCError(m.Error); rerr != nil {
			return fmt.Errorf("%w: %s refused a request: %v", ErrProtocol, c.server, rerr)
		}
		return fmt.Errorf("%w: %s sent a reply with id %s", ErrProtocol, c.server, m.ID)
	}
	var r reply
	switch {
	case len(m.Error) > 0 && string(m.Error) != "null":
		r.err = decodeRPCError(m.Error)
	case len(m.Result) == 0:
		r.err = fmt.Errorf("%w: reply without result or error", ErrBadReply)
	default:
		r.result, r.hex = m.Result, m.hex
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !ok {
		// The call was cancelled, or the server invented an id.
		c.log.Debug("reply for no pending call", "server", c.server.String(), "id", id)
		return nil
	}
	ch <- r
	return nil
}

func decodeRPCError(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var e RPCError
	if err := json.Unmarshal(raw, &e); err == nil && (e.Message != "" || e.Code != 0) {
		return &e
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &RPCError{Code: -1, Message: s}
	}
	return &RPCError{Code: -1, Message: string(raw)}
}

func (c *Client) notify(method string, params json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.subs[method] {
		select {
		case ch <- params:
		default:
			// A slow consumer loses old notifications, never blocks reads;
			// for headers only the newest matters.
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- params:
			default:
			}
		}
	}
}
