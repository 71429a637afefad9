package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

// SyncOptions are ncspv bench's: see its flags in cmd/ncspv.
type SyncOptions struct {
	Blocks     int    // headers in the generated chain
	Coinbase   string // size range of the parent coinbases, "MIN-MAX" bytes
	Lookups    int    // lookups measured at each concurrency
	ChunkSize  int    // headers per sync request (0: the engine's default)
	Pipeline   int    // sync requests in flight (0: the engine's default)
	DataDir    string // where the header database goes ("": a temporary directory)
	CPUProfile string // a CPU profile of the sync goes here ("": none)
	LookupCPU  string // a CPU profile of the 100 concurrent 1.4.3 lookups goes here

	FirstAnswer     int // headers of the simulated chain for the first answer (0 skips it)
	FirstAnswerFull int // headers of the chain the full sync is timed on, scaled up
	FirstSetup      int // emulated Tor link: milliseconds to build a circuit
	FirstOneWay     int // emulated Tor link: milliseconds each way
	FirstRate       int // emulated Tor link: bytes per second each way (0: no cap)
}

// Memory is the daemon's memory policy, which the benchmarks apply to the
// measured process as the daemon does.
type Memory struct {
	Limit   func() // sets the soft memory limit unless GOMEMLIMIT is set
	Default int64  // the limit it sets, bytes
}

// benchLog shows the engine's warnings (fallbacks, lies, retries) on
// standard error: a figure measured through one of them should say so.
var benchLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// benchNames are registered in the chain Serve generates.
var benchNames = []string{"d/bench", "d/example", "id/alice"}

// RunSync runs ncspv bench: sync, lookups and the first answer on a
// fresh install. The fake ElectrumX servers run in a child process (ncspv
// ServerCommand) so that the peak RSS measured here is ncspv's own.
func RunSync(c SyncOptions, mem Memory) error {
	if c.Blocks < 100 || c.Lookups < 100 {
		return errors.New("--blocks and --lookups must be at least 100")
	}
	if c.FirstAnswer != 0 && (c.FirstAnswer < 5000 || c.FirstAnswerFull < 5000 || c.FirstAnswerFull > c.FirstAnswer) {
		return errors.New("--first-answer-headers (0 skips the comparison) and --first-answer-full-headers must be at least 5000, the second at most the first")
	}
	minCB, maxCB, err := parseRange(c.Coinbase)
	if err != nil {
		return fmt.Errorf("--coinbase: %w", err)
	}
	ask, stop, err := benchChild(ServerCommand, "--blocks", strconv.Itoa(c.Blocks),
		"--min-coinbase", strconv.Itoa(minCB), "--max-coinbase", strconv.Itoa(maxCB))
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("Generating %d regtest AuxPoW headers (%s-byte parent coinbases) in the server process...\n", c.Blocks, c.Coinbase)
	f, err := ask("")
	if err != nil || len(f) != 3 || f[0] != "ready" {
		return fmt.Errorf("bench server did not start: %v %v", f, err)
	}
	srv143, err1 := electrumx.ParseServer(f[1])
	srv142, err2 := electrumx.ParseServer(f[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bench server addresses %v", f)
	}

	fmt.Printf("\nMachine: %d CPUs, %s %s/%s, %s build; GOGC=%s GOMEMLIMIT=%s\n", runtime.NumCPU(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, buildKind(), cmp.Or(os.Getenv("GOGC"), "100"),
		cmp.Or(os.Getenv("GOMEMLIMIT"), fmt.Sprintf("%dMiB", mem.Default>>20)))
	fmt.Println("Servers on loopback: protocol 1.4.3 with ElectrumX 1.20's padding and 1 s small-reply timer; protocol 1.4.2 without.")

	dir := c.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ncspv-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	engine, store, closeAll, err := syncEngine(filepath.Join(dir, "headers.db"), srv143, c, mem)
	if err != nil {
		return err
	}
	defer closeAll()
	if c.CPUProfile != "" {
		pf, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pf.Close()
	}
	ctx := context.Background()
	serverCPU0, err := serverCPU(ask)
	if err != nil {
		return err
	}
	ownCPU0 := cpuTime()
	t0 := time.Now()
	if err := engine.Sync(ctx); err != nil {
		return err
	}
	syncTime := time.Since(t0)
	ownCPU := cpuTime() - ownCPU0
	serverCPU1, err := serverCPU(ask)
	if err != nil {
		return err
	}
	if c.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if store.Tip().Height != int32(c.Blocks) {
		return fmt.Errorf("sync ended at %d", store.Tip().Height)
	}
	runtime.GC()
	syncRSS := peakRSS()

	// Raw transfer of the same chunks, no parsing or verification.
	raw, err := electrumx.Dial(ctx, srv143, electrumx.Config{Dial: electrumx.DialFunc(tor.Direct.Dialer(tor.Fresh()))})
	if err != nil {
		return err
	}
	// Same chunks, same number of requests in flight as the engine.
	inflight := c.Pipeline
	if inflight <= 0 {
		inflight = 4
	}
	chunk := c.ChunkSize
	if chunk <= 0 || chunk > 2016 {
		chunk = spv.DefaultChunkSize
	}
	t0 = time.Now()
	var bytes int
	var rawErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, inflight)
	for start := 1; start <= c.Blocks; start += chunk {
		wg.Add(1)
		sem <- struct{}{}
		go func(start int) {
			defer func() { <-sem; wg.Done() }()
			r, err := raw.BlockHeaders(ctx, int32(start), min(chunk, c.Blocks+1-start), 0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rawErr = err
				return
			}
			bytes += len(r.Raw)
		}(start)
	}
	wg.Wait()
	if rawErr != nil {
		return rawErr
	}
	rawTime := time.Since(t0)
	raw.Close()

	fmt.Printf("\nSync: %d headers (%.1f MB raw) verified and stored in %v: %.0f headers/s\n",
		c.Blocks, float64(bytes)/1e6, syncTime.Round(time.Millisecond), float64(c.Blocks)/syncTime.Seconds())
	fmt.Printf("      peak RSS after sync: %.1f MiB\n", float64(syncRSS)/(1<<20))
	fmt.Printf("      CPU time during the sync: ncspv %v, fake server %v (of %v on %d CPUs)\n",
		ownCPU.Round(time.Millisecond), (serverCPU1 - serverCPU0).Round(time.Millisecond),
		(syncTime * time.Duration(runtime.NumCPU())).Round(time.Millisecond), runtime.NumCPU())
	fmt.Printf("      raw transfer of the same chunks (same requests in flight, decoded, unverified): %v; sync/raw time ratio %.2f\n",
		rawTime.Round(time.Millisecond), syncTime.Seconds()/rawTime.Seconds())

	for _, s := range []electrumx.Server{srv143, srv142} {
		e2, closeE2, err := lookupEngine(store, s)
		if err != nil {
			return err
		}
		proto := "1.4.3"
		if s == srv142 {
			proto = "1.4.2"
		}
		// Warm the connection, then count request lines for one lookup.
		if _, err := e2.NameShow(ctx, []byte(benchNames[0]), spv.LookupOptions{StreamID: "count"}); err != nil {
			return err
		}
		before, err := roundTrips(ask, s)
		if err != nil {
			return err
		}
		const counted = 50
		for i := 0; i < counted; i++ {
			if _, err := e2.NameShow(ctx, []byte(benchNames[i%len(benchNames)]), spv.LookupOptions{StreamID: "count"}); err != nil {
				return err
			}
		}
		after, err := roundTrips(ask, s)
		if err != nil {
			return err
		}
		fmt.Printf("\nLookups, protocol %s: %.2f round trips per lookup\n", proto, float64(after-before)/counted)
		for _, conc := range []int{1, 100} {
			profile := c.LookupCPU != "" && conc == 100 && proto == "1.4.3"
			if profile {
				pf, err := os.Create(c.LookupCPU)
				if err != nil {
					return err
				}
				defer pf.Close()
				pprof.StartCPUProfile(pf)
			}
			cpu0 := cpuTime()
			lat, err := measureLookups(ctx, e2, conc, c.Lookups)
			cpu := cpuTime() - cpu0
			if profile {
				pprof.StopCPUProfile()
			}
			if err != nil {
				return err
			}
			fmt.Printf("  %3d concurrent: p50 %v  p99 %v  max %v  (%d lookups, %v of CPU each)\n", conc,
				pct(lat, 50), pct(lat, 99), lat[len(lat)-1], len(lat), (cpu / time.Duration(len(lat))).Round(time.Microsecond))
		}
		closeE2()
	}
	runtime.GC()
	fmt.Printf("\nPeak RSS of this process (sync + lookups): %.1f MiB\n", float64(peakRSS())/(1<<20))

	// After the peak RSS: these connections are the bench's, not ncspv's.
	fmt.Printf("\nBare round trips of the 1.4.3 lookup request, without ncspv (reply read, not decoded or verified):\n")
	for _, conc := range []int{1, 100} {
		raw, err := measureRawProofs(ctx, srv143, conc, c.Lookups)
		if err != nil {
			return err
		}
		fmt.Printf("  %3d concurrent: p50 %v  p99 %v  max %v\n", conc, pct(raw, 50), pct(raw, 99), raw[len(raw)-1])
	}
	return firstAnswer(ctx, c, dir)
}

// firstAnswer compares a fresh install's way to its first verified
// name_show, full sync against sampled sync, on a simulated chain through
// the emulated Tor link.
func firstAnswer(ctx context.Context, c SyncOptions, dir string) error {
	if c.FirstAnswer == 0 {
		return nil
	}
	link := tortest.Link{CircuitSetup: time.Duration(c.FirstSetup) * time.Millisecond,
		OneWay: time.Duration(c.FirstOneWay) * time.Millisecond, BytesPerSecond: c.FirstRate}
	fmt.Printf("\nFirst verified name_show on a fresh install: a simulated chain from a checkpoint, served by a fake ElectrumX 1.20 (padding, small-reply timer)\n")
	fmt.Printf("through the emulated Tor link (%v per new circuit, %v each way, %s per connection); background full verification starts after it\n",
		link.CircuitSetup, link.OneWay, rateText(c.FirstRate))
	run := func(n int, in Install) (FirstAnswer, *SimChain, error) {
		t0 := time.Now()
		sc := GenerateSim(n, 18)
		fmt.Printf("  chain of %d headers after the anchor: %.0f bytes per header on average, %d retargets (generated in %v)\n",
			n, sc.AvgHeader, sc.Retargets, time.Since(t0).Round(time.Second))
		sub, err := os.MkdirTemp(dir, "first-")
		if err != nil {
			return FirstAnswer{}, nil, err
		}
		defer os.RemoveAll(sub)
		r, err := RunFirstAnswer(ctx, sc, link, in, sub, benchLog)
		return r, sc, err
	}
	full, _, err := run(c.FirstAnswerFull, Install{})
	if err != nil {
		return err
	}
	scale := float64(c.FirstAnswer) / float64(c.FirstAnswerFull)
	fmt.Printf("  full sync (today):  %d headers, %.1f MB in %v", c.FirstAnswerFull, float64(full.Bytes)/1e6, full.Time.Round(100*time.Millisecond))
	if scale != 1 {
		fmt.Printf("; scaled to %d headers: %.0f MB in %v", c.FirstAnswer, float64(full.Bytes)*scale/1e6,
			time.Duration(float64(full.Time)*scale).Round(time.Second))
	}
	fmt.Printf(" (%s)\n", full.Verification)
	runtime.GC()
	// Against ElectrumX 1.19+ alone the 80-byte part comes one header at
	// a time; its cost grows with the headers like the full sync's.
	singles, _, err := run(c.FirstAnswerFull, Install{Sampled: true, SplitBug: true})
	if err != nil {
		return err
	}
	runtime.GC()
	sampled, _, err := run(c.FirstAnswer, Install{Sampled: true})
	if err != nil {
		return err
	}
	fmt.Printf("  sampled sync:       %d headers, %.1f MB (%.1f MiB) in %v (%s: %d AuxPoW samples, the newest 2016 headers and the name's block checked in full)\n",
		c.FirstAnswer, float64(sampled.Bytes)/1e6, float64(sampled.Bytes)/(1<<20), sampled.Time.Round(100*time.Millisecond),
		sampled.Verification, sampled.Samples)
	fmt.Printf("  sampled sync from ElectrumX 1.19+ only (split bug: single headers): %d headers, %.1f MB in %v",
		c.FirstAnswerFull, float64(singles.Bytes)/1e6, singles.Time.Round(100*time.Millisecond))
	if scale != 1 {
		fmt.Printf("; scaled to %d headers: at most %.0f MB in %v", c.FirstAnswer, float64(singles.Bytes)*scale/1e6,
			time.Duration(float64(singles.Time)*scale).Round(time.Second))
	}
	fmt.Printf(" (%s)\n", singles.Verification)
	fmt.Printf("  sampled/full: %.3f of the bytes, %.3f of the time (full scaled to %d headers)\n",
		float64(sampled.Bytes)/(float64(full.Bytes)*scale), float64(sampled.Time)/(float64(full.Time)*scale), c.FirstAnswer)
	return nil
}

// serverCPU asks the bench server for the CPU time it has used.
func serverCPU(ask func(string) ([]string, error)) (time.Duration, error) {
	f, err := ask("cpu")
	if err != nil || len(f) != 1 {
		return 0, fmt.Errorf("cpu: %v %v", f, err)
	}
	return time.ParseDuration(f[0])
}

func roundTrips(ask func(string) ([]string, error), s electrumx.Server) (int, error) {
	f, err := ask("count " + s.String())
	if err != nil || len(f) != 1 {
		return 0, fmt.Errorf("count: %v %v", f, err)
	}
	return strconv.Atoi(f[0])
}

func syncEngine(path string, srv electrumx.Server, c SyncOptions, mem Memory) (*spv.Engine, *headers.Store, func(), error) {
	mem.Limit() // as the daemon does
	p := &headers.RegTestParams
	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(path, p, cp.Anchor(), headers.StoreOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	pool := electrumx.NewPool(electrumx.Config{})
	e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
		Servers: []electrumx.Server{srv}, Router: tor.NewRouter(tor.Direct), Pool: pool,
		QueryServers: 1, ChunkSize: c.ChunkSize, Pipeline: c.Pipeline, Logger: benchLog})
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return e, store, func() { e.Close(); pool.Close(); store.Close() }, nil
}

func lookupEngine(store *headers.Store, srv electrumx.Server) (*spv.Engine, func(), error) {
	p := store.Params()
	pool := electrumx.NewPool(electrumx.Config{})
	e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: checkpoints.ForNetwork(p),
		Store: store, Servers: []electrumx.Server{srv}, Router: tor.NewRouter(tor.Direct), Pool: pool,
		QueryServers: 1, Confirmations: 1, NoCache: true, CatchUpAfter: time.Hour, Logger: benchLog})
	if err != nil {
		return nil, nil, err
	}
	if err := e.Sync(context.Background()); err != nil {
		return nil, nil, err
	}
	return e, func() { e.Close(); pool.Close() }, nil
}

// measureLookups runs n lookups spread over conc goroutines, each with its
// own stream ID (so its own connection).
func measureLookups(ctx context.Context, e *spv.Engine, conc, n int) ([]time.Duration, error) {
	return measure(conc, n, func(w int) (func(int) error, func(), error) {
		opts := spv.LookupOptions{StreamID: fmt.Sprintf("stream-%d-%d", conc, w)}
		return func(i int) error {
			_, err := e.NameShow(ctx, []byte(benchNames[i%len(benchNames)]), opts)
			return err
		}, func() {}, nil
	})
}

// measureRawProofs is measureLookups without ncspv: conc connections
// send the get_value_proof requests a lookup sends and take the reply
// line as it comes, neither decoded nor verified. Its latency is what the
// machine, the loopback and the fake server cost on their own.
func measureRawProofs(ctx context.Context, srv electrumx.Server, conc, n int) ([]time.Duration, error) {
	return measure(conc, n, func(int) (func(int) error, func(), error) {
		c, err := electrumx.Dial(ctx, srv, electrumx.Config{Dial: electrumx.DialFunc(tor.Direct.Dialer(tor.Fresh()))})
		if err != nil {
			return nil, nil, err
		}
		var r json.RawMessage
		return func(i int) error {
			sh := spv.NameScriptHash([]byte(benchNames[i%len(benchNames)]))
			return c.Call(ctx, "blockchain.name.get_value_proof", []any{sh}, &r)
		}, func() { c.Close() }, nil
	})
}
