package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/prop279"
	"github.com/ncspv/ncspv/rpc"
	"github.com/ncspv/ncspv/spv"
)

// prop279Command speaks Tor's Prop279 naming protocol on stdin/stdout, as
// ncprop279 does, answering through the local engine or a running
// daemon's RPC. It is a drop-in for StemNS's ncprop279 command line.
type prop279Command struct {
	RPCConnect string `long:"rpcconnect" description:"Resolve through the daemon at this address (default: the daemon on --rpclisten when it holds the database, else a local engine)"`
	Timeout    int    `long:"timeout" default:"10000" description:"Milliseconds per query before it fails (status 1, so StemNS retries)"`
	OnlyOnion  bool   `long:"onlyonion" description:"Answer only with onion services, as for NAME.bit.onion (ncprop279's -ncprop279.onlyonion)"`
	// ncprop279's own flags, accepted and ignored so StemNS configurations
	// work unchanged.
	Conf string `long:"conf" description:"Ignored (ncprop279 compatibility)"`
}

func (c *prop279Command) Execute([]string) error {
	cfg, r, log, ctx, stop, err := startCommand()
	if err != nil {
		return err
	}
	defer stop()
	var lookup prop279.Lookup
	addr := c.RPCConnect
	if addr == "" && daemonAnswers(r.rpcListen[0]) {
		addr = r.rpcListen[0] // a running daemon resolves, with its circuits
	}
	if addr == "" {
		n, err := openNode(cfg, r, log)
		switch {
		case errors.Is(err, headers.ErrDatabaseInUse):
			// A daemon holds the database: resolve through it.
			addr = r.rpcListen[0]
			log.Info("the daemon holds the database; resolving through its RPC", "address", addr)
		case err != nil:
			return err
		default:
			defer n.close()
			lookup = engineLookup(n)
		}
	}
	if addr != "" {
		lookup = rpcLookup(addr, cfg, r)
	}
	return prop279.ServeWith(ctx, os.Stdin, os.Stdout, lookup, time.Duration(c.Timeout)*time.Millisecond, log,
		prop279.Options{OnlyOnion: c.OnlyOnion})
}

// rpcLookup answers Prop279 lookups through a daemon's name_show. The
// value is read in the encoding the answer names: hex is asked for (any
// bytes survive it), but a server that ignores the option still works.
func rpcLookup(addr string, cfg *config, r *resolved) prop279.Lookup {
	return func(ctx context.Context, name, stream string) ([]byte, error) {
		opts := map[string]any{"valueEncoding": "hex"}
		if stream != "" {
			opts["streamID"] = stream
		}
		raw, err := callRPC(ctx, addr, cfg, r, "name_show", []any{name, opts})
		var rerr *rpc.Error
		if errors.As(err, &rerr) && rerr.Code == rpc.CodeNameNotFound {
			return nil, prop279.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		var res spv.NameShowJSON
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, fmt.Errorf("name_show answer: %w", err)
		}
		return res.ValueBytes()
	}
}

// holdWhileSyncing retries a lookup that fails because the headers are
// still syncing, every poll, until it answers or ctx ends: the caller (a
// Tor stream, which Tor lets wait for a while) gets the answer once the
// sync allows, not a failure.
func holdWhileSyncing(l prop279.Lookup, poll time.Duration) prop279.Lookup {
	return func(ctx context.Context, name, stream string) ([]byte, error) {
		for {
			v, err := l(ctx, name, stream)
			if !errors.Is(err, spv.ErrSyncing) {
				return v, err
			}
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(poll):
			}
		}
	}
}

// engineLookup answers Prop279 lookups from the local engine.
func engineLookup(n *node) prop279.Lookup {
	return func(ctx context.Context, name, stream string) ([]byte, error) {
		res, err := n.engine.NameShow(ctx, []byte(name), spv.LookupOptions{StreamID: stream})
		var ne *spv.NameError
		if errors.As(err, &ne) {
			return nil, prop279.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		return res.Value, nil
	}
}
