package spv

import (
	"errors"
	"fmt"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/tor"
)

// NameErrorKind says why a name has no value.
type NameErrorKind int

// Kinds of NameError: both map to RPC code -4 (what ncdns turns into
// NXDOMAIN).
const (
	NameNeverExisted NameErrorKind = iota
	NameExpired
)

// NameError reports a name that never existed or has expired, with Core's
// message ("name never existed: 'd/x'" / "name expired: 'd/x'").
type NameError struct {
	Kind NameErrorKind
	Name []byte
}

func (e *NameError) Error() string {
	if e.Kind == NameExpired {
		return "name expired: " + NameForMessage(e.Name)
	}
	return "name never existed: " + NameForMessage(e.Name)
}

// Errors a lookup or sync can end with, matched with errors.Is.
var (
	// ErrSyncing: our headers are not caught up yet (RPC code -10).
	ErrSyncing = errors.New("still syncing block headers")
	// ErrNoServer: no ElectrumX server could be reached.
	ErrNoServer = errors.New("no ElectrumX server reachable")
	// ErrAllServersLied: every server that answered was caught lying.
	ErrAllServersLied = errors.New("every ElectrumX server that answered failed verification")
	// ErrStoreWrite: the header database could not be written (a full
	// disk, say). No server is to blame, and what is stored still serves.
	ErrStoreWrite = errors.New("cannot write the header database")
	// ErrUnprovable: the name's newest update is in a block whose header
	// is neither stored (pruned) nor under the checkpoint, so it cannot be verified or shown.
	ErrUnprovable = errors.New("the name cannot be shown: its update is in a block whose header ncspv does not keep (pruned, above the checkpoint)")
	// ErrHeaderFromFuture: a server's next header is dated more than two
	// hours after this computer's clock. Core refuses such a header
	// without blaming the peer (BLOCK_TIME_FUTURE), since the clock may be
	// the one that is wrong, and so does ncspv: the chain stops below it.
	ErrHeaderFromFuture = errors.New("a header is dated more than 2 hours after this computer's clock (is the clock right?)")
)

// LieError is a server answer that failed verification. The server is
// demoted; the reason goes to the log.
type LieError struct {
	Server string
	Reason string
}

func (e *LieError) Error() string {
	return fmt.Sprintf("server %s failed verification: %s", e.Server, e.Reason)
}

// noServer is ErrNoServer with each server's error. When every server
// failed because the proxy itself was unreachable (Tor not running), that
// one cause is given once instead of once per server.
func noServer(errs []error) error {
	var first *tor.ProxyUnreachableError
	for i, err := range errs {
		var pe *tor.ProxyUnreachableError
		if !errors.As(err, &pe) {
			return fmt.Errorf("%w: %w", ErrNoServer, errors.Join(errs...))
		}
		if i == 0 {
			first = pe
		}
	}
	if first == nil {
		return ErrNoServer
	}
	return fmt.Errorf("%w: %w", ErrNoServer, first)
}

// blame is what a rule violation in a server's headers (what: where)
// says about the server: a lie, except a header from the future.
func blame(server, what string, err error) error {
	if errors.Is(err, headers.ErrTimeTooNew) {
		return fmt.Errorf("%w: %s from %s: %v", ErrHeaderFromFuture, what, server, err)
	}
	var re headers.RuleError
	if errors.As(err, &re) {
		return lie(server, "%s: %v", what, err)
	}
	return err
}

func lie(server, format string, args ...any) error {
	return &LieError{Server: server, Reason: fmt.Sprintf(format, args...)}
}
