package prop279

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// cause is the first part of a lookup error, what kind of failure it was
// ("still syncing block headers", "no ElectrumX server reachable"), without
// the details after it, which may name a server's proof of the name.
func cause(err error) string {
	if err == nil {
		return "unknown"
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// Serve speaks Prop279 as ncprop279 does: it writes "INIT 1 0", then
// answers "RESOLVE <id> <name> [<stream id>]" with "RESOLVED <id> <status>
// <result>" and "CANCEL <id>" with "CANCELED <id>". Queries run
// concurrently, so one slow lookup does not hold the others; a cancelled
// query gets no RESOLVED. It returns when in ends or ctx is done.
func Serve(ctx context.Context, in io.Reader, out io.Writer, lookup Lookup, timeout time.Duration, log *slog.Logger) error {
	return ServeWith(ctx, in, out, lookup, timeout, log, Options{})
}

// ServeWith is Serve with resolution options. A RESOLVE's fields past the
// stream ID are ignored, as ncprop279 ignores them. A failed lookup (status
// 1) is logged with its cause at info level, the name at debug only.
func ServeWith(ctx context.Context, in io.Reader, out io.Writer, lookup Lookup, timeout time.Duration, log *slog.Logger, o Options) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var mu sync.Mutex
	write := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	write("INIT 1 0")

	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	var wg sync.WaitGroup
	defer wg.Wait()
	var qmu sync.Mutex
	queries := map[string]context.CancelFunc{}

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "RESOLVE" && len(f) >= 3:
			id, name, stream := f[1], f[2], ""
			if len(f) >= 4 {
				stream = f[3]
			} else {
				log.Warn("Prop279 client sent no stream isolation ID; stream isolation won't work properly")
			}
			qctx, cancel := context.WithTimeout(ctx, timeout)
			qmu.Lock()
			if _, dup := queries[id]; dup {
				qmu.Unlock()
				cancel()
				log.Warn("Prop279 query id reused while in flight", "id", id)
				continue
			}
			queries[id] = cancel
			qmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := ResolveWith(qctx, lookup, name, stream, o)
				if a.Status == StatusFailure {
					log.Info("Prop279 lookup failed", "id", id, "cause", cause(err))
					log.Debug("Prop279 lookup failed", "id", id, "name", name, "err", err)
				}
				qmu.Lock()
				_, live := queries[id]
				delete(queries, id)
				qmu.Unlock()
				cancel()
				if live {
					write("RESOLVED %s %d %s", id, a.Status, a.Result)
				}
			}()
		case f[0] == "CANCEL" && len(f) == 2:
			qmu.Lock()
			if cancel, ok := queries[f[1]]; ok {
				cancel()
				delete(queries, f[1])
			}
			qmu.Unlock()
			write("CANCELED %s", f[1])
		default:
			log.Warn("unknown Prop279 command", "command", f[0])
		}
	}
	return sc.Err()
}
