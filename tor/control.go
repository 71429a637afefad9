package tor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cretz/bine/control"
)

// ErrControlPort wraps failures to reach or use Tor's control port.
var ErrControlPort = errors.New("tor control port")

// bineController drives streams over a bine control connection. bine
// pairs replies with commands by order, and two goroutines inside
// SendRequest at once can each wait for the other's reply (seen as a
// deadlock against a real Tor), so commands are sent one at a time.
type bineController struct {
	mu sync.Mutex
	c  *control.Conn
}

func (b *bineController) AttachStream(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.AttachStream(id, "0", 0)
}

func (b *bineController) RedirectStream(id, host string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.RedirectStream(id, host, 0)
}

func (b *bineController) CloseStream(id string, reason int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.CloseStream(id, strconv.Itoa(reason))
}

// ControlOptions configures RunControlResolver.
type ControlOptions struct {
	Addr     string // host:port of Tor's ControlPort, or unix:/path of its ControlSocket
	Password string // HASHEDPASSWORD auth; cookie and safecookie need none
	Resolver *StreamResolver
	Log      *slog.Logger
}

// RunControlResolver connects to Tor's control port, makes Tor leave new
// streams unattached, and resolves .bit streams until ctx is done. On a
// clean exit it gives stream attachment back to Tor.
func RunControlResolver(ctx context.Context, o ControlOptions) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The control port is Tor itself, on loopback or a local socket: it is
	// never reached through the SOCKS proxy.
	network, addr, err := ParseControlAddr(o.Addr)
	if err != nil {
		return err
	}
	nc, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrControlPort, err)
	}
	conn := control.NewConn(textproto.NewConn(nc))
	defer conn.Close()
	if err := conn.Authenticate(o.Password); err != nil {
		return fmt.Errorf("%w: authenticate: %w", ErrControlPort, err)
	}
	// Before 0.4.5.1-alpha Tor has no CONTROLLER_WAIT status, so the
	// streams waiting for ncspv cannot be told from Tor's own; with
	// __LeaveStreamsUnattached set they would all hang.
	if pi, err := conn.ProtocolInfo(); err == nil {
		if v := pi.TorVersion; torVersionBefore(v, [4]int{0, 4, 5, 1}) {
			return fmt.Errorf("%w: Tor %s is older than 0.4.5.1-alpha, which added the CONTROLLER_WAIT "+
				"stream status the resolver depends on; upgrade Tor, or use StemNS with `ncspv prop279`", ErrControlPort, v)
		}
	}
	kv, err := conn.GetConf("__LeaveStreamsUnattached")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrControlPort, err)
	}
	// What was there is restored at exit: a torrc (or another tool) may
	// have set it.
	previous := "0"
	if len(kv) == 1 && kv[0].Val != "" {
		previous = kv[0].Val
	}
	if previous == "1" {
		log.Warn("__LeaveStreamsUnattached is already 1: another controller (StemNS?) may be handling streams, " +
			"and two controllers attaching the same streams race; or an earlier ncspv died without resetting it, " +
			"in which case the streams it left waiting are taken over now")
	}

	events := make(chan control.Event, 64)
	if err := conn.AddEventListener(events, control.EventCodeStream); err != nil {
		return fmt.Errorf("%w: SETEVENTS STREAM: %w", ErrControlPort, err)
	}
	if err := conn.SetConf(control.NewKeyVal("__LeaveStreamsUnattached", "1")); err != nil {
		return fmt.Errorf("%w: SETCONF __LeaveStreamsUnattached=1: %w", ErrControlPort, err)
	}
	log.Info("resolving .bit streams through Tor's control port", "addr", o.Addr)

	r := o.Resolver
	r.Ctrl = &bineController{c: conn}
	if r.Log == nil {
		r.Log = log
	}

	// bine delivers events with a blocking send while holding its read
	// lock, and commands need that lock, so events are queued here and
	// handled by another goroutine.
	q := newEventQueue()
	readErr := make(chan error, 1)
	go func() { readErr <- conn.HandleEvents(ctx) }()
	go func() {
		for ev := range events {
			q.push(ev)
		}
	}()
	// Streams that exist now are Tor's own, listed as NEW while they wait
	// for a circuit, unless __LeaveStreamsUnattached was already 1: then
	// they were left to a controller (one that died, say: a crashed
	// ncspv leaves it set, and Tor holds every new stream until its SOCKS
	// timeout), and are taken over. Otherwise only the streams Tor hands
	// over from now on (CONTROLLER_WAIT) are ours.
	if previous == "1" {
		for _, ev := range waitingStreams(conn, log) {
			q.push(ev)
		}
	}
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for {
			ev, ok := q.pop()
			if !ok {
				return
			}
			switch ev := ev.(type) {
			case *control.StreamEvent:
				parsed, err := ParseStreamEvent(ev.Raw)
				if err != nil {
					log.Debug("ignoring STREAM event", "err", err)
					continue
				}
				r.Handle(ctx, parsed)
			case recoveredStream:
				r.Handle(ctx, StreamEvent(ev))
			}
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-readErr:
		runErr = fmt.Errorf("%w: %w", ErrControlPort, err)
	}
	q.close()
	<-handled
	r.Wait()
	if runErr == nil {
		// Hand attachment back as it was, so Tor does not hold new
		// streams forever (and a torrc's own setting stays).
		if err := conn.SetConf(control.NewKeyVal("__LeaveStreamsUnattached", previous)); err != nil {
			log.Warn("could not restore __LeaveStreamsUnattached", "err", err)
		}
	}
	return runErr
}

// ParseControlAddr reads --torcontrol: host:port (a ControlPort) or
// unix:/path (a ControlSocket, as Debian's tor offers at
// /run/tor/control). It is checked at start, before any sync.
func ParseControlAddr(s string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("%w: --torcontrol %q: the socket path must be absolute", ErrControlPort, s)
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", "", fmt.Errorf("%w: --torcontrol %q: want host:port or unix:/path", ErrControlPort, s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%w: --torcontrol %q: bad port", ErrControlPort, s)
	}
	return "tcp", s, nil
}

// recoveredStream is a stream found waiting at start.
type recoveredStream StreamEvent

func (recoveredStream) Code() control.EventCode { return control.EventCodeStream }

// waitingStreams lists client streams that may be waiting for a
// controller. GETINFO stream-status shows CONTROLLER_WAIT and
// CIRCUIT_WAIT alike as NEW; attaching one that is not waiting only earns
// a harmless 555. The list carries no SOCKS credentials, so each
// recovered .bit stream is looked up in an isolation of its own.
func waitingStreams(conn *control.Conn, log *slog.Logger) []recoveredStream {
	resp, err := conn.SendRequest("GETINFO stream-status")
	if err != nil {
		log.Warn("GETINFO stream-status failed; streams left waiting by an earlier controller stay waiting", "err", err)
		return nil
	}
	var out []recoveredStream
	for _, d := range resp.Data {
		d = strings.TrimPrefix(d, "stream-status=")
		for _, line := range strings.Split(d, "\n") {
			ev, err := ParseStreamEvent(strings.TrimSpace(line))
			if err != nil || ev.Status != "NEW" {
				continue
			}
			ev.Status = "CONTROLLER_WAIT"
			ev.SOCKSUsername = "ncspv-recovered-stream-" + ev.ID
			out = append(out, recoveredStream(ev))
		}
	}
	if len(out) > 0 {
		log.Info("taking over streams that were waiting for a controller", "count", len(out))
	}
	return out
}

// eventQueue is an unbounded FIFO, so bine's event relay never blocks.
type eventQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []control.Event
	closed bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *eventQueue) push(e control.Event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *eventQueue) pop() (control.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	e := q.items[0]
	q.items = q.items[1:]
	return e, true
}

// torVersionBefore reports whether a Tor version string such as
// "0.4.5.1-alpha (git-…)" is older than min. A version that does not parse
// is not reported as older.
func torVersionBefore(version string, min [4]int) bool {
	num, _, _ := strings.Cut(version, " ")
	num, _, _ = strings.Cut(num, "-")
	parts := strings.Split(num, ".")
	if len(parts) < 3 || len(parts) > 4 {
		return false
	}
	var v [4]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return false
		}
		v[i] = n
	}
	return slices.Compare(v[:], min[:]) < 0
}
