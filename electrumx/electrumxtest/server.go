package electrumxtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
)

// Request is one request as the server received it.
type Request struct {
	Method string
	Params []json.RawMessage
	// Protocol is what this connection negotiated.
	Protocol string
}

// Action tells the server to misbehave on one request. The zero value
// answers normally.
type Action struct {
	Result  any                 // send this result instead (marshalled as JSON)
	Error   *electrumx.RPCError // send this error instead
	Delay   time.Duration       // wait before answering
	NoReply bool                // never answer
	Raw     []byte              // write this line (plus newline) instead
	// Oversize writes one line of this many bytes without a newline first.
	Oversize int
	Endless  bool // stream bytes without a newline until the client leaves
	Close    bool // hang up instead of answering
}

// Hook decides per request whether to misbehave; nil answers honestly.
type Hook func(r Request) *Action

// Server is a fake ElectrumX server on 127.0.0.1.
type Server struct {
	Backend *Backend
	// MaxProtocol is the newest protocol it agrees to (default 1.4.3).
	MaxProtocol string
	Software    string
	// Pad pads every reply to a power of two of at least 1 KiB with
	// spaces before the final brace, as ElectrumX 1.20's transport does.
	Pad bool
	// HoldSmall, like ElectrumX 1.20, holds a reply under 1 KiB until this
	// long after the previous send once the connection has sent 1 KiB.
	HoldSmall time.Duration
	// HoldFromStart is ElectrumX 1.18's timer: every reply under 1 KiB is
	// held, the first too (counted from the connection's start), with no
	// 1 KiB warm-up as 1.20 has.
	HoldFromStart bool
	// EntryCost is what each get_value_proof entry costs to produce.
	EntryCost time.Duration
	// SplitBug garbles blockchain.block.headers with cp_height and a start
	// above 0 as ElectrumX 1.19 and later do (electrumx-observed.md).
	SplitBug bool

	mu       sync.Mutex
	hook     Hook
	ln       net.Listener
	tls      *tls.Config
	conns    map[net.Conn]*serverConn
	accepted int
	held     int
	requests map[string]int
	lines    int
	log      []Request
	closed   bool
	wg       sync.WaitGroup
}

type serverConn struct {
	conn     net.Conn
	writeMu  sync.Mutex
	sent     int
	lastSend time.Time
	protocol string
	subHdrs  bool
}

// Options for NewServer.
type Options struct {
	TLS bool
	// Certificate, with TLS, replaces the throwaway self-signed one (for
	// a CA-signed server, see CA).
	Certificate *tls.Certificate
	MaxProtocol string
	Pad         bool
	HoldSmall   time.Duration
	// HoldFromStart: hold as ElectrumX 1.18 does (see Server).
	HoldFromStart bool
	EntryCost     time.Duration
	// SplitBug: garble 80-byte header chunks as ElectrumX 1.19+ does.
	SplitBug bool
}

// NewServer starts a fake server for b on a free loopback port.
func NewServer(b *Backend, o Options) (*Server, error) {
	s := &Server{
		Backend:       b,
		MaxProtocol:   o.MaxProtocol,
		Software:      "ElectrumX 1.20.0",
		Pad:           o.Pad,
		HoldSmall:     o.HoldSmall,
		HoldFromStart: o.HoldFromStart,
		EntryCost:     o.EntryCost,
		SplitBug:      o.SplitBug,
		conns:         map[net.Conn]*serverConn{},
		requests:      map[string]int{},
	}
	if s.MaxProtocol == "" {
		s.MaxProtocol = "1.4.3"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if o.TLS {
		cfg, err := selfSigned()
		if err != nil {
			ln.Close()
			return nil, err
		}
		if o.Certificate != nil {
			cfg = &tls.Config{Certificates: []tls.Certificate{*o.Certificate}}
		}
		s.tls = cfg
		ln = tls.NewListener(ln, cfg)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Address is the server as a client names it.
func (s *Server) Address() electrumx.Server {
	addr := s.ln.Addr().(*net.TCPAddr)
	return electrumx.Server{Host: "127.0.0.1", Port: addr.Port, TLS: s.tls != nil}
}

// SetHook installs a misbehaviour hook (nil: honest).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// Accepted is how many connections the server has accepted.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// RoundTrips is how many request lines arrived: a batch is one round trip.
func (s *Server) RoundTrips() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}

// Log returns every request received so far, in arrival order.
func (s *Server) Log() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// OpenConns is how many client connections are open now.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Held is how many replies the small-reply timer delayed.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Requests is how many requests of method arrived ("" for all).
func (s *Server) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "" {
		n := 0
		for _, v := range s.requests {
			n += v
		}
		return n
	}
	return s.requests[method]
}

// Close stops the server and its connections.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// NotifyTip sends the backend's tip to subscribed connections.
func (s *Server) NotifyTip() {
	tip := s.Backend.Tip()
	hdr, _ := s.Backend.Header(tip)
	note := map[string]any{"jsonrpc": "2.0", "method": "blockchain.headers.subscribe",
		"params": []any{map[string]any{"hex": hexOf(hdr), "height": tip}}}
	b, _ := json.Marshal(note)
	s.mu.Lock()
	var subs []*serverConn
	for _, sc := range s.conns {
		if sc.subHdrs {
			subs = append(subs, sc)
		}
	}
	s.mu.Unlock()
	for _, sc := range subs {
		s.send(sc, b, false)
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		sc := &serverConn{conn: c, lastSend: time.Now()} // 1.18 holds from the start
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.accepted++
		s.conns[c] = sc
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(sc)
	}
}

func (s *Server) serve(sc *serverConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc.conn)
		s.mu.Unlock()
		sc.conn.Close()
	}()
	r := bufio.NewReaderSize(sc.conn, 1<<20)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		s.mu.Lock()
		s.lines++
		s.mu.Unlock()
		if line[0] == '[' {
			var reqs []rawRequest
			if json.Unmarshal(line, &reqs) != nil {
				s.send(sc, errorLine(nil, -32700, "invalid JSON"), false)
				continue
			}
			// A batch is answered as one array, like aiorpcx.
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := make([]json.RawMessage, 0, len(reqs))
				for _, rq := range reqs {
					if resp, _ := s.handle(sc, rq); resp != nil {
						out = append(out, resp)
					}
				}
				b, _ := json.Marshal(out)
				s.send(sc, b, false)
			}()
			continue
		}
		var rq rawRequest
		if json.Unmarshal(line, &rq) != nil {
			s.send(sc, errorLine(nil, -32700, "invalid JSON"), false)
			continue
		}
		// Each request in its own goroutine: delayed replies can overtake.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, own := s.handle(sc, rq); resp != nil {
				s.send(sc, resp, own)
			}
		}()
	}
}

type rawRequest struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

// handle answers one request; nil means no reply line. own says that the
// line is in a buffer of the server's that send may pad in place and
// recycle.
func (s *Server) handle(sc *serverConn, rq rawRequest) (line []byte, own bool) {
	s.mu.Lock()
	s.requests[rq.Method]++
	s.log = append(s.log, Request{Method: rq.Method, Params: rq.Params, Protocol: sc.protocol})
	hook := s.hook
	protocol := sc.protocol
	s.mu.Unlock()

	var act *Action
	if hook != nil {
		act = hook(Request{Method: rq.Method, Params: rq.Params, Protocol: protocol})
	}
	if act != nil {
		if act.Delay > 0 {
			time.Sleep(act.Delay)
		}
		switch {
		case act.NoReply:
			return nil, false
		case act.Close:
			sc.conn.Close()
			return nil, false
		case act.Raw != nil:
			return act.Raw, false
		case act.Oversize > 0:
			s.write(sc, bytes.Repeat([]byte{'x'}, act.Oversize), false)
			return nil, false
		case act.Endless:
			chunk := bytes.Repeat([]byte{'y'}, 64<<10)
			for {
				if _, err := sc.conn.Write(chunk); err != nil {
					return nil, false
				}
			}
		case act.Error != nil:
			return errorLine(rq.ID, act.Error.Code, act.Error.Message), false
		case act.Result != nil:
			return resultLine(rq.ID, act.Result), false
		}
	}
	result, rerr := s.dispatch(sc, rq.Method, rq.Params)
	if rerr != nil {
		return errorLine(rq.ID, rerr.Code, rerr.Message), false
	}
	_, own = result.(preEncodedBuf)
	return resultLine(rq.ID, result), own
}

// preEncoded is a result that is already JSON.
type preEncoded string

// preEncodedBuf is a result that is already JSON, in a buffer from getBuf
// that the reply line may reuse.
type preEncodedBuf []byte

// bufPool recycles the megabyte buffers of block.headers replies.
var bufPool sync.Pool

func getBuf() []byte {
	if p, ok := bufPool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

func putBuf(b []byte) {
	if cap(b) >= 64<<10 {
		bufPool.Put(&b)
	}
}

func resultLine(id json.RawMessage, result any) []byte {
	if pre, ok := result.(preEncodedBuf); ok {
		if id == nil {
			id = json.RawMessage("null")
		}
		// Make room in front of the result in its own buffer.
		const head = `{"jsonrpc":"2.0","result":`
		n := len(pre)
		b := slices.Grow([]byte(pre), len(head)+len(id)+8)[:n+len(head)]
		copy(b[len(head):], b[:n])
		copy(b, head)
		b = append(b, `,"id":`...)
		b = append(b, id...)
		return append(b, '}')
	}
	if pre, ok := result.(preEncoded); ok {
		if id == nil {
			id = json.RawMessage("null")
		}
		b := make([]byte, 0, len(pre)+len(id)+40)
		b = append(b, `{"jsonrpc":"2.0","result":`...)
		b = append(b, pre...)
		b = append(b, `,"id":`...)
		b = append(b, id...)
		return append(b, '}')
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "result": result, "id": id})
	return b
}

func errorLine(id json.RawMessage, code int, msg string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0",
		"error": map[string]any{"code": code, "message": msg}, "id": id})
	return b
}

// send writes one message line, padded and held like ElectrumX 1.20 when
// configured.
func (s *Server) send(sc *serverConn, b []byte, own bool) {
	// ElectrumX decides on the message size before padding it.
	small := len(b)+1 < 1024
	if !own {
		b = slices.Clip(b) // never write into a caller's buffer
	}
	if s.Pad {
		b = pad(b)
	}
	b = append(b, '\n')
	s.write(sc, b, small)
	if own {
		putBuf(b)
	}
}

func (s *Server) write(sc *serverConn, b []byte, small bool) {
	sc.writeMu.Lock()
	defer sc.writeMu.Unlock()
	if s.HoldSmall > 0 && small && (sc.sent >= 1024 || s.HoldFromStart) {
		if wait := time.Until(sc.lastSend.Add(s.HoldSmall)); wait > 0 {
			s.mu.Lock()
			s.held++
			s.mu.Unlock()
			time.Sleep(wait)
		}
	}
	sc.conn.Write(b)
	sc.sent += len(b)
	sc.lastSend = time.Now()
}

// pad grows a JSON object or array with spaces before its final brace or
// bracket so that the line (with its newline) is a power of two of at
// least 1 KiB.
func pad(b []byte) []byte {
	size := 1024
	for size < len(b)+1 {
		size *= 2
	}
	// A batch's reply (a JSON array) is one message, padded as any other.
	if len(b) == 0 || (b[len(b)-1] != '}' && b[len(b)-1] != ']') {
		return b
	}
	last := b[len(b)-1]
	// In place when the buffer has room (one more byte for the newline);
	// a clipped buffer is copied first.
	if cap(b) < size {
		b = append(make([]byte, 0, size), b...)
	}
	b = b[:len(b)-1]
	for len(b) < size-2 {
		b = append(b, spaces[:min(len(spaces), size-2-len(b))]...)
	}
	return append(b, last)
}

var spaces = bytes.Repeat([]byte{' '}, 4096)

func rpcErr(code int, format string, args ...any) *electrumx.RPCError {
	return &electrumx.RPCError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func intParam(params []json.RawMessage, i int) (int64, bool) {
	if i >= len(params) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(params[i]), 10, 64)
	return n, err == nil
}

func strParam(params []json.RawMessage, i int) (string, bool) {
	if i >= len(params) {
		return "", false
	}
	var s string
	return s, json.Unmarshal(params[i], &s) == nil
}

var protocols = []string{"1.4", "1.4.1", "1.4.2", "1.4.3"}

func (s *Server) negotiate(sc *serverConn, params []json.RawMessage) (any, *electrumx.RPCError) {
	lo, hi := "1.4", "1.4"
	if len(params) > 1 {
		var one string
		var rng []string
		switch {
		case json.Unmarshal(params[1], &one) == nil:
			lo, hi = one, one
		case json.Unmarshal(params[1], &rng) == nil && len(rng) == 2:
			lo, hi = rng[0], rng[1]
		default:
			return nil, rpcErr(1, "invalid protocol version")
		}
	}
	maxIdx := slices.Index(protocols, s.MaxProtocol)
	for i := maxIdx; i >= 0; i-- {
		if vcmp(protocols[i], lo) >= 0 && vcmp(protocols[i], hi) <= 0 {
			s.mu.Lock()
			sc.protocol = protocols[i]
			s.mu.Unlock()
			return []string{s.Software, protocols[i]}, nil
		}
	}
	return nil, rpcErr(1, "unsupported protocol version: %s", hi)
}

func vcmp(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for len(pa) < 3 {
		pa = append(pa, "0")
	}
	for len(pb) < 3 {
		pb = append(pb, "0")
	}
	for i := 0; i < 3; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return 0
}

func (s *Server) dispatch(sc *serverConn, method string, params []json.RawMessage) (any, *electrumx.RPCError) {
	b := s.Backend
	switch method {
	case "server.version":
		return s.negotiate(sc, params)
	case "server.ping":
		return nil, nil
	case "blockchain.headers.subscribe":
		s.mu.Lock()
		sc.subHdrs = true
		s.mu.Unlock()
		tip := b.Tip()
		h, _ := b.Header(tip)
		return map[string]any{"hex": hexOf(h), "height": tip}, nil
	case "blockchain.block.header":
		height, ok := intParam(params, 0)
		if !ok {
			return nil, rpcErr(-32602, "invalid height")
		}
		cp, _ := intParam(params, 1)
		h, ok := b.Header(int32(height))
		if !ok {
			return nil, rpcErr(1, "height %d out of range", height)
		}
		if cp == 0 {
			return hexOf(h), nil
		}
		if height > cp || cp > int64(b.Tip()) {
			return nil, rpcErr(1, "require header height %d <= cp_height %d <= chain height %d", height, cp, b.Tip())
		}
		branch, root := b.cpProof(int32(height), int32(cp))
		return map[string]any{"header": hexOf(h[:80]), "branch": hexHashes(branch), "root": root.String()}, nil
	case "blockchain.block.headers":
		start, ok1 := intParam(params, 0)
		count, ok2 := intParam(params, 1)
		if !ok1 || !ok2 || start < 0 || count < 0 {
			return nil, rpcErr(-32602, "invalid start or count")
		}
		cp, _ := intParam(params, 2)
		count = min(count, 2016, int64(b.Tip())+1-start)
		count = max(count, 0)
		// Built by hand into a reused buffer: json.Marshal would escape and
		// re-validate megabytes of hex, and fresh megabyte buffers cost
		// page faults, making the fake the bottleneck of benchmarks.
		res := getBuf()
		res = append(res, `{"hex":"`...)
		if cp > 0 && start > 0 && s.SplitBug {
			res = b.appendSplitBugHex(res, start, count)
		} else {
			res = b.appendJoinedHex(res, start, count, cp > 0)
		}
		res = fmt.Appendf(res, `","count":%d,"max":2016`, count)
		if cp > 0 && count > 0 {
			last := start + count - 1
			if last > cp || cp > int64(b.Tip()) {
				return nil, rpcErr(1, "require header height %d <= cp_height %d <= chain height %d", last, cp, b.Tip())
			}
			branch, root := b.cpProof(int32(last), int32(cp))
			bj, _ := json.Marshal(hexHashes(branch))
			res = fmt.Appendf(res, `,"branch":%s,"root":"%s"`, bj, root)
		}
		return preEncodedBuf(append(res, '}')), nil
	case "blockchain.scripthash.get_history":
		sh, ok := strParam(params, 0)
		if !ok || !validScriptHash(sh) {
			return nil, rpcErr(1, "%s is not a valid script hash", sh)
		}
		hist := b.History(sh)
		out := make([]map[string]any, len(hist))
		for i, e := range hist {
			out[i] = map[string]any{"tx_hash": e.TxHash.String(), "height": e.Height}
		}
		return out, nil
	case "blockchain.transaction.get":
		id, ok := hashParam(params, 0)
		if !ok {
			return nil, rpcErr(1, "invalid tx hash")
		}
		raw, _, ok := b.Tx(id)
		if !ok {
			return nil, rpcErr(2, "daemon error: DaemonError({'code': -5, 'message': 'No such mempool or blockchain transaction.'})")
		}
		return hexOf(raw), nil
	case "blockchain.transaction.get_merkle":
		id, ok := hashParam(params, 0)
		height, ok2 := intParam(params, 1)
		if !ok || !ok2 {
			return nil, rpcErr(-32602, "%d argument passed to method \"blockchain.transaction.get_merkle\" but it requires 2", len(params))
		}
		branch, pos, found := b.merkle(id, int32(height))
		if !found {
			return nil, rpcErr(1, "tx %s not in block at height %d", id, height)
		}
		return map[string]any{"block_height": height, "merkle": hexHashes(branch), "pos": pos}, nil
	case "blockchain.name.get_value_proof":
		s.mu.Lock()
		proto := sc.protocol
		s.mu.Unlock()
		if vcmp(proto, "1.4.3") < 0 {
			return nil, rpcErr(-32601, "unknown method \"%s\"", method)
		}
		sh, ok := strParam(params, 0)
		if !ok || !validScriptHash(sh) {
			return nil, rpcErr(1, "%s is not a valid script hash", sh)
		}
		cp, _ := intParam(params, 1)
		if tip := s.Backend.Tip(); cp < 0 || int32(cp) > tip {
			return nil, rpcErr(1, "cp_height %d out of range 0..%d", cp, tip)
		}
		return map[string]any{sh: s.valueProof(sh, int32(cp))}, nil
	}
	return nil, rpcErr(-32601, "unknown method \"%s\"", method)
}

// valueProof is ElectrumX's NameIndexElectrumX.name_get_value_proof:
// history newest first, stopping at the first gap longer than the
// expiration depth between an update and the next newer one (not the
// newest: a name always renewed in time comes back whole), or at the
// first entry at or below cp_height (which gets a header proof). Each
// entry costs EntryCost, as each costs real ElectrumX a database read and
// a merkle proof (0.24 s for 258 entries).
func (s *Server) valueProof(sh string, cp int32) []map[string]any {
	b := s.Backend
	hist := b.History(sh)
	var out []map[string]any
	prev := int32(-1) // the next newer entry's height
	for i := len(hist) - 1; i >= 0; i-- {
		e := hist[i]
		if prev >= 0 && prev-e.Height > b.ExpirationDepth {
			break
		}
		if s.EntryCost > 0 {
			time.Sleep(s.EntryCost)
		}
		raw, _, _ := b.Tx(e.TxHash)
		branch, pos, _ := b.merkle(e.TxHash, e.Height)
		entry := map[string]any{"height": e.Height, "tx": hexOf(raw),
			"tx_merkle": map[string]any{"merkle": hexHashes(branch), "pos": pos}}
		prev = e.Height
		if cp > 0 && e.Height <= cp {
			h, _ := b.Header(e.Height)
			cpBranch, root := b.cpProof(e.Height, cp)
			entry["header"] = map[string]any{"header": hexOf(h[:80]), "branch": hexHashes(cpBranch), "root": root.String()}
			out = append(out, entry)
			break
		}
		out = append(out, entry)
	}
	if out == nil {
		out = []map[string]any{}
	}
	return out
}

func validScriptHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

func hashParam(params []json.RawMessage, i int) (chainhash.Hash, bool) {
	s, ok := strParam(params, i)
	if !ok || len(s) != 64 {
		return chainhash.Hash{}, false
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, false
	}
	return *h, true
}

// selfSigned makes a throwaway self-signed certificate, like the ones
// Namecoin ElectrumX operators use.
func selfSigned() (*tls.Config, error) {
	cert, err := newLeaf("electrumx-test", nil, nil)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{*cert}}, nil
}

// newLeaf makes a server certificate for 127.0.0.1 with a new key, signed
// by parent (nil: by itself).
func newLeaf(commonName string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{der}
	if parent != tmpl {
		chain = append(chain, parent.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key}, nil
}

// CA is a throwaway certificate authority, for servers whose certificates
// an authority vouches for.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a certificate authority.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "electrumxtest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key}, nil
}

// Pool holds the authority, as a client's roots.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue makes a new certificate for 127.0.0.1 (each call a new key, as a
// renewal would).
func (ca *CA) Issue() (*tls.Certificate, error) {
	return newLeaf("127.0.0.1", ca.cert, ca.key)
}
