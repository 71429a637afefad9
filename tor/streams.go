package tor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ncspv/ncspv/prop279"
)

// StreamEvent is the part of a control-port STREAM event the resolver
// needs (control-spec "STREAM" event; SOCKS credentials are quoted).
type StreamEvent struct {
	ID            string
	Status        string // NEW, NEWRESOLVE, DETACHED, SENTCONNECT, FAILED, ...
	CircuitID     string
	Host          string
	Port          int
	Purpose       string
	SOCKSUsername string
	SOCKSPassword string
}

// ErrBadStreamEvent is returned for a STREAM event line that does not
// parse; the resolver leaves such a stream alone.
var ErrBadStreamEvent = errors.New("malformed STREAM event")

// ParseStreamEvent parses the text after "650 STREAM ".
func ParseStreamEvent(line string) (StreamEvent, error) {
	var ev StreamEvent
	fields, err := splitControlFields(line)
	if err != nil || len(fields) < 4 {
		return ev, fmt.Errorf("%w: %q", ErrBadStreamEvent, truncate(line))
	}
	ev.ID, ev.Status, ev.CircuitID = fields[0], fields[1], fields[2]
	i := strings.LastIndexByte(fields[3], ':')
	if i <= 0 {
		return ev, fmt.Errorf("%w: target %q", ErrBadStreamEvent, truncate(fields[3]))
	}
	host, port := strings.Trim(fields[3][:i], "[]"), fields[3][i+1:]
	if host == "" {
		return ev, fmt.Errorf("%w: target %q", ErrBadStreamEvent, truncate(fields[3]))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return ev, fmt.Errorf("%w: port %q", ErrBadStreamEvent, truncate(port))
	}
	ev.Host, ev.Port = host, p
	for _, f := range fields[4:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "PURPOSE":
			ev.Purpose = v
		case "SOCKS_USERNAME":
			ev.SOCKSUsername = v
		case "SOCKS_PASSWORD":
			ev.SOCKSPassword = v
		}
	}
	if ev.ID == "" || ev.Status == "" {
		return ev, fmt.Errorf("%w: %q", ErrBadStreamEvent, truncate(line))
	}
	return ev, nil
}

// splitControlFields splits on spaces, unquoting KEY="..." values with the
// control protocol's C-style escapes.
func splitControlFields(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			switch c {
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			}
			b.WriteByte(c)
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == ' ' && !inQuote:
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteByte(c)
		}
	}
	if inQuote || escaped {
		return nil, errors.New("unterminated quote")
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// StreamController is the narrow part of a Tor control connection the
// resolver drives. AttachStream always attaches to circuit 0 (Tor picks
// the circuit), so isolation stays Tor's decision.
type StreamController interface {
	AttachStream(id string) error
	RedirectStream(id, host string) error
	CloseStream(id string, reason int) error
}

// endReasonResolveFailed is Tor's RELAY END reason RESOLVEFAILED, the
// close reason a browser shows as "could not resolve".
const endReasonResolveFailed = 2

// IsBitTarget says whether a stream target is one ncspv resolves.
func IsBitTarget(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	return strings.HasSuffix(h, ".bit") || strings.HasSuffix(h, ".bit.onion")
}

// StreamResolver resolves .bit streams Tor leaves unattached
// (__LeaveStreamsUnattached=1). Non-.bit streams are attached at once,
// without waiting for any lookup.
type StreamResolver struct {
	Ctrl StreamController
	// Resolve answers a .bit query for a stream isolation ID.
	Resolve func(ctx context.Context, query, isolationID string) prop279.Answer
	Timeout time.Duration
	Log     *slog.Logger

	mu       sync.Mutex
	pending  map[string]context.CancelFunc // .bit streams being resolved
	resolves map[string]bool               // streams that are SOCKS RESOLVE requests
	wg       sync.WaitGroup
}

// IsolationID is the lookup isolation ID of a stream: its SOCKS
// credentials, which are also what Tor isolates its circuits by.
func IsolationID(ev StreamEvent) string {
	if ev.SOCKSUsername == "" && ev.SOCKSPassword == "" {
		return ""
	}
	return "socks:" + strconv.Quote(ev.SOCKSUsername) + ":" + strconv.Quote(ev.SOCKSPassword)
}

// Handle acts on one STREAM event. A client stream Tor leaves for the
// controller is reported NEW (or NEWRESOLVE), then CONTROLLER_WAIT (seen
// with Tor 0.4.9); only CONTROLLER_WAIT is acted on, so Tor's own
// streams (directory fetches, also NEW) are never touched. A DETACHED
// stream was handled already and only needs attaching again.
func (r *StreamResolver) Handle(ctx context.Context, ev StreamEvent) {
	log := r.log()
	switch ev.Status {
	case "NEWRESOLVE":
		r.mu.Lock()
		if r.resolves == nil {
			r.resolves = map[string]bool{}
		}
		r.resolves[ev.ID] = true
		r.mu.Unlock()
		return
	case "CONTROLLER_WAIT":
	case "DETACHED":
		r.attach(ev.ID)
		return
	case "CLOSED", "FAILED":
		r.mu.Lock()
		if cancel, ok := r.pending[ev.ID]; ok {
			cancel()
			delete(r.pending, ev.ID)
		}
		delete(r.resolves, ev.ID)
		r.mu.Unlock()
		return
	default:
		return
	}
	if !IsBitTarget(ev.Host) {
		r.attach(ev.ID)
		return
	}
	r.mu.Lock()
	resolve := r.resolves[ev.ID]
	r.mu.Unlock()
	if resolve {
		// A SOCKS RESOLVE of a .bit name: the answer may be an onion, which
		// has no address to return, so fail it the way a DNS miss fails.
		log.Debug("closing .bit SOCKS RESOLVE stream", "stream", ev.ID, "name", ev.Host)
		r.close(ev.ID)
		return
	}
	lctx, cancel := context.WithTimeout(ctx, r.timeout())
	r.mu.Lock()
	if r.pending == nil {
		r.pending = map[string]context.CancelFunc{}
	}
	if _, dup := r.pending[ev.ID]; dup {
		r.mu.Unlock()
		cancel()
		return
	}
	r.pending[ev.ID] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		a := r.Resolve(lctx, ev.Host, IsolationID(ev))
		r.mu.Lock()
		_, live := r.pending[ev.ID]
		delete(r.pending, ev.ID)
		r.mu.Unlock()
		if !live {
			return // the stream closed while we looked
		}
		if a.Status != prop279.StatusSuccess {
			log.Debug("closing .bit stream", "stream", ev.ID, "name", ev.Host, "status", a.Status)
			r.close(ev.ID)
			return
		}
		if err := r.Ctrl.RedirectStream(ev.ID, a.Result); err != nil {
			log.Warn("REDIRECTSTREAM failed; closing the stream", "err", err)
			r.close(ev.ID)
			return
		}
		log.Debug("redirected .bit stream", "stream", ev.ID, "name", ev.Host, "to", a.Result)
		r.attach(ev.ID)
	}()
}

// Wait waits for lookups in flight.
func (r *StreamResolver) Wait() { r.wg.Wait() }

func (r *StreamResolver) attach(id string) {
	if err := r.Ctrl.AttachStream(id); err != nil {
		// Offline Tor answers 551 and fails the stream itself; nothing
		// else to do but say so at debug level.
		r.log().Debug("ATTACHSTREAM failed", "stream", id, "err", err)
		return
	}
	r.log().Debug("attached stream", "stream", id)
}

func (r *StreamResolver) close(id string) {
	if err := r.Ctrl.CloseStream(id, endReasonResolveFailed); err != nil {
		r.log().Debug("CLOSESTREAM failed", "stream", id, "err", err)
	}
}

func (r *StreamResolver) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 10 * time.Second
	}
	return r.Timeout
}

func (r *StreamResolver) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
