package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/prop279"
	"github.com/ncspv/ncspv/rpc"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// node is the wired engine: store, connections and engine.
type node struct {
	r      *resolved
	log    *slog.Logger
	store  *headers.Store
	pool   *electrumx.Pool
	engine *spv.Engine
}

func newLogger(level slog.Level, getenv func(string) string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if getenv("JOURNAL_STREAM") != "" {
		// journald stamps lines itself.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

var chainName = map[string]string{"mainnet": "main", "testnet": "test", "regtest": "regtest"}

// defaultMemoryLimit is the Go runtime's soft memory limit for ncspv
// (GOMEMLIMIT overrides it). ncspv's live heap is a few MB; the limit keeps
// the garbage between collections from growing the process past 20 MiB
// during a sync (BENCHMARKS.md). Past it the collector works harder, never
// with more than half the CPU, so a burst of work slows down instead of
// failing. A tighter limit (12 MiB) made 100 concurrent lookups five times
// slower (goroutine stacks count against it), and GOGC=50 cost a quarter
// of the sync speed for 2 MiB.
const defaultMemoryLimit = 16 << 20

func limitMemory(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

func openNode(cfg *config, r *resolved, log *slog.Logger) (*node, error) {
	if len(r.servers) == 0 {
		return nil, fmt.Errorf("no --server given; %s has no public servers", r.params.Name)
	}
	limitMemory(os.Getenv)
	if err := os.MkdirAll(r.netDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	cp := checkpoints.ForNetwork(r.params)
	store, err := headers.OpenStore(filepath.Join(r.netDir, "headers.db"), r.params, cp.Anchor(), headers.StoreOptions{})
	if errors.Is(err, headers.ErrDatabaseInUse) {
		return nil, fmt.Errorf("%w (is an ncspv daemon already running with this data directory?)", err)
	}
	if err != nil {
		return nil, storeAdvice(err)
	}
	pins, err := electrumx.OpenPinStore(filepath.Join(r.netDir, "tls-pins.json"))
	if err != nil {
		store.Close()
		return nil, err
	}
	pool := electrumx.NewPool(electrumx.Config{Pins: pins, ClientName: "ncspv " + version, Logger: log})
	addrs := spv.MainNetAddresses
	switch r.params {
	case &headers.TestNetParams:
		addrs = spv.TestNetAddresses
	case &headers.RegTestParams:
		addrs = spv.RegTestAddresses
	}
	e, err := spv.New(spv.Config{
		Params: r.params, Addresses: addrs, Checkpoint: cp, Store: store,
		Servers: r.servers, Router: tor.NewRouter(r.proxy), Pool: pool,
		Confirmations: int32(cfg.Confirmations), Logger: log,
		SampledSync: !cfg.NoSampledSync, NoFullVerify: cfg.NoFullVerify,
		LookupDeadline: time.Duration(cfg.LookupDeadline) * time.Millisecond,
	})
	if err != nil {
		pool.Close()
		store.Close()
		return nil, err
	}
	return &node{r: r, log: log, store: store, pool: pool, engine: e}, nil
}

func (n *node) close() {
	n.engine.Close()
	n.pool.Close()
	if err := n.store.Close(); err != nil {
		n.log.Error("closing the header database", "err", err)
	}
}

// daemonCommand runs ncspv as a service. It is also what a bare "ncspv"
// runs.
type daemonCommand struct{}

func (c *daemonCommand) Execute([]string) error {
	return runDaemon(context.Background(), activeConfig, os.Getenv, nil)
}

// runDaemon syncs, serves the RPC and stops on SIGINT, SIGTERM or the RPC
// "stop", all through one shutdown path. ready, if not nil, receives the
// RPC listen addresses once serving.
func runDaemon(parent context.Context, cfg *config, getenv func(string) string, ready chan<- []string) error {
	r, err := cfg.resolve(getenv)
	if err != nil {
		return err
	}
	log := newLogger(r.logLevel, getenv)
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	n, err := openNode(cfg, r, log)
	if err != nil {
		return err
	}
	defer n.close()
	tip := n.store.Tip()
	log.Info("ncspv starting", "version", version, "network", r.params.Name, "data", r.netDir,
		"height", tip.Height, "proxy", r.proxy.String(), "servers", len(r.servers))

	srv, err := rpc.New(rpc.Config{
		Backend: n.engine, Chain: chainName[r.params.Name],
		User: cfg.RPCUser, Pass: cfg.RPCPass, CookiePath: r.cookie, CookieMode: r.cookieMode, CookieGID: r.cookieGID,
		Stop: stop, Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if cfg.RPCPass == "" {
		log.Info("RPC cookie written", "path", r.cookie)
	}
	var servers []*http.Server
	var addrs []string
	var wg sync.WaitGroup
	for _, addr := range r.rpcListen {
		ln, err := net.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("RPC listen on %s: %w (is Namecoin Core or another ncspv "+
				"listening there? --rpclisten sets the address)", addr, err)
		}
		if err != nil {
			return fmt.Errorf("RPC listen on %s: %w", addr, err)
		}
		hs := srv.NewHTTPServer()
		servers = append(servers, hs)
		addrs = append(addrs, ln.Addr().String())
		log.Info("RPC listening", "address", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("RPC server stopped", "err", err)
				stop()
			}
		}()
	}
	if err := sdNotify(getenv, "READY=1"); err != nil {
		log.Warn("systemd notification failed", "err", err)
	}
	if ready != nil {
		ready <- addrs
	}

	var fatal atomic.Pointer[error]
	if cfg.TorControl != "" {
		// A .bit stream that arrives during the first sync waits for it
		// (as long as Tor lets the stream wait) instead of failing.
		lookup := holdWhileSyncing(engineLookup(n), 500*time.Millisecond)
		res := &tor.StreamResolver{
			Resolve: func(ctx context.Context, q, iso string) prop279.Answer {
				return prop279.Resolve(ctx, lookup, q, iso)
			},
			// Tor's SocksTimeout: how long Tor itself lets a stream wait.
			Timeout: 2 * time.Minute,
			Log:     log,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := tor.RunControlResolver(ctx, tor.ControlOptions{Addr: cfg.TorControl,
				Password: cfg.TorControlPassword, Resolver: res, Log: log})
			if err != nil && ctx.Err() == nil {
				// Without the resolver Tor would hold every new stream; exit
				// with the error so a supervisor restarts ncspv.
				log.Error("Tor control-port resolver stopped; shutting down", "err", err)
				fatal.Store(&err)
				stop()
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		if cfg.Follow {
			n.engine.Follow(ctx)
			return
		}
		if err := n.engine.Sync(ctx); err != nil && ctx.Err() == nil {
			log.Warn("initial header sync failed; lookups will retry", "err", err)
		}
	}()

	<-ctx.Done()
	log.Info("ncspv stopping")
	sdNotify(getenv, "STOPPING=1")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(shutdown)
	}
	wg.Wait()
	if err := fatal.Load(); err != nil {
		return *err
	}
	return nil
}

// syncCommand syncs headers and exits.
type syncCommand struct{}

// startCommand is the shared start of the one-shot subcommands: the
// resolved configuration, a logger, and a context cancelled by SIGINT or
// SIGTERM so an interrupted command closes the database cleanly.
func startCommand() (*config, *resolved, *slog.Logger, context.Context, context.CancelFunc, error) {
	cfg := activeConfig
	r, err := cfg.resolve(os.Getenv)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	return cfg, r, newLogger(r.logLevel, os.Getenv), ctx, stop, nil
}

func (c *syncCommand) Execute([]string) error {
	cfg, r, log, ctx, stop, err := startCommand()
	if err != nil {
		return err
	}
	defer stop()
	n, err := openNode(cfg, r, log)
	if err != nil {
		return err
	}
	defer n.close()
	if err := n.engine.Sync(ctx); err != nil {
		return err
	}
	st := n.engine.State()
	fmt.Printf("%s synced: height %d, tip %s\n", r.params.Name, st.Height, st.TipHash)
	return nil
}

// nameShowCommand looks one name up, locally or through a running daemon.
type nameShowCommand struct {
	RPCConnect    string `long:"rpcconnect" description:"Ask the daemon at this address (default: the daemon on --rpclisten, when it holds the database)"`
	StreamID      string `long:"streamid" description:"Stream isolation ID of the lookup"`
	NameEncoding  string `long:"name-encoding" default:"ascii" description:"ascii, utf8 or hex"`
	ValueEncoding string `long:"value-encoding" default:"ascii" description:"ascii, utf8 or hex"`
	AllowExpired  bool   `long:"allow-expired" description:"Show an expired name instead of failing"`
	Args          struct {
		Name string `positional-arg-name:"NAME" required:"true"`
	} `positional-args:"true"`
}

func (c *nameShowCommand) Execute([]string) error {
	cfg, r, log, ctx, stop, err := startCommand()
	if err != nil {
		return err
	}
	defer stop()
	nameEnc, err := spv.ParseEncoding(c.NameEncoding)
	if err != nil {
		return err
	}
	valueEnc, err := spv.ParseEncoding(c.ValueEncoding)
	if err != nil {
		return err
	}
	askDaemon := func(addr string) error {
		opts := map[string]any{"nameEncoding": string(nameEnc), "valueEncoding": string(valueEnc), "allowExpired": c.AllowExpired}
		if c.StreamID != "" {
			opts["streamID"] = c.StreamID
		}
		res, err := callRPC(ctx, addr, cfg, r, "name_show", []any{c.Args.Name, opts})
		if err != nil {
			return err
		}
		return printJSON(inEncodings(res, nameEnc, valueEnc))
	}
	if c.RPCConnect != "" {
		return askDaemon(c.RPCConnect)
	}
	if daemonAnswers(r.rpcListen[0]) {
		// A running daemon answers, with its headers and its circuits:
		// no second engine, database and Tor traffic of our own.
		return askDaemon(r.rpcListen[0])
	}
	name, err := spv.Decode(c.Args.Name, nameEnc)
	if err != nil {
		return err
	}
	n, err := openNode(cfg, r, log)
	if errors.Is(err, headers.ErrDatabaseInUse) {
		// A daemon holds the database: it answers instead, as for status.
		derr := askDaemon(r.rpcListen[0])
		var re *rpc.Error
		if derr == nil || errors.As(derr, &re) { // -4 is an answer too
			return derr
		}
		return fmt.Errorf("the database is in use and the daemon's RPC at %s did not answer: %w", r.rpcListen[0], derr)
	}
	if err != nil {
		return err
	}
	defer n.close()
	res, err := n.engine.NameShow(ctx, name, spv.LookupOptions{StreamID: c.StreamID, AllowExpired: c.AllowExpired})
	if err != nil {
		return err
	}
	return printJSON(res.JSON(nameEnc, valueEnc))
}

// statusCommand prints the chain state: from the daemon if one runs
// (it holds the database), else from the database.
type statusCommand struct {
	RPCConnect string `long:"rpcconnect" description:"Ask the daemon at this address (default: the daemon on --rpclisten, when one answers there)"`
}

func (c *statusCommand) Execute([]string) error {
	cfg := activeConfig
	r, err := cfg.resolve(os.Getenv)
	if err != nil {
		return err
	}
	// A daemon (the system one, say, whose database is not the user's)
	// knows better than a database of our own: ask it when one answers.
	addr := c.RPCConnect
	if addr == "" && daemonAnswers(r.rpcListen[0]) {
		addr = r.rpcListen[0]
	}
	if addr != "" {
		res, err := callRPC(context.Background(), addr, cfg, r, "getblockchaininfo", nil)
		if err != nil {
			return fmt.Errorf("daemon at %s: %w", addr, err)
		}
		var info map[string]any
		if err := json.Unmarshal(res, &info); err != nil {
			return err
		}
		info["daemon"] = addr
		return printJSON(info)
	}
	cp := checkpoints.ForNetwork(r.params)
	store, err := headers.OpenStore(filepath.Join(r.netDir, "headers.db"), r.params, cp.Anchor(),
		headers.StoreOptions{LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, headers.ErrDatabaseInUse) {
		res, err := callRPC(context.Background(), r.rpcListen[0], cfg, r, "getblockchaininfo", nil)
		if err != nil {
			return fmt.Errorf("the database is in use and the daemon's RPC did not answer: %w", err)
		}
		return printJSON(res)
	}
	if err != nil {
		return storeAdvice(err)
	}
	defer store.Close()
	tip := store.Tip()
	v := store.Verification()
	return printJSON(map[string]any{"chain": chainName[r.params.Name], "blocks": tip.Height,
		"bestblockhash": tip.Hash.String(), "oldest_stored": store.Base(),
		"verification": v.Mode(), "verifiedheight": v.VerifiedHeight(tip.Height), "daemon": "not running"})
}

// storeAdvice tells the user what to do with a damaged header database:
// it holds nothing that cannot be downloaded again.
func storeAdvice(err error) error {
	if errors.Is(err, headers.ErrCorrupt) {
		return fmt.Errorf("%w (it holds only block headers, which ncspv downloads again: "+
			"move the file away or delete it to start over)", err)
	}
	return err
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

// inEncodings is a name_show answer with its name and value in the
// encodings asked for. A server that ignored them (its answer names the
// encodings it used) is re-encoded; what cannot be is shown as sent.
func inEncodings(raw json.RawMessage, nameEnc, valueEnc spv.Encoding) any {
	var j spv.NameShowJSON
	if json.Unmarshal(raw, &j) != nil || (j.NameEncoding == nameEnc && j.ValueEncoding == valueEnc) {
		return raw
	}
	if j.Reencode(nameEnc, valueEnc) != nil {
		return raw
	}
	return j
}

// errDaemonAuth: a daemon answers but not to our credentials.
var errDaemonAuth = errors.New("RPC credentials refused")

// readCookie reads the RPC cookie: the configured one, else the packaged
// system daemon's.
func readCookie(r *resolved) (string, string, error) {
	var firstErr error
	for _, path := range append([]string{r.cookie}, r.cookieFallbacks...) {
		b, err := os.ReadFile(path)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if errors.Is(err, os.ErrPermission) {
				return "", "", fmt.Errorf("%w: cannot read the RPC cookie %s: %v (the daemon's --rpccookieperms and --rpccookiegroup decide who may)", errDaemonAuth, path, err)
			}
			continue
		}
		u, p, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok {
			return "", "", fmt.Errorf("cookie file %s is malformed", path)
		}
		return u, p, nil
	}
	return "", "", fmt.Errorf("read RPC cookie: %w", firstErr)
}

// daemonAnswers reports whether an ncspv daemon (or another JSON-RPC
// server) listens at addr: a refused connection means none.
func daemonAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// callRPC calls the daemon with the configured user/password or cookie.
func callRPC(ctx context.Context, addr string, cfg *config, r *resolved, method string, params []any) (json.RawMessage, error) {
	user, pass := cfg.RPCUser, cfg.RPCPass
	if pass == "" {
		u, p, err := readCookie(r)
		if err != nil {
			return nil, err
		}
		user, pass = u, p
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("%w: the daemon at %s refused the RPC credentials (give its --rpcuser/--rpcpass, or --rpccookie with a cookie you may read; docs/deploy.md)", errDaemonAuth, addr)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("RPC reply (HTTP %d): %w", resp.StatusCode, err)
	}
	if out.Error != nil {
		return nil, out.Error
	}
	return out.Result, nil
}
