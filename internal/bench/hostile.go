package bench

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// hostileCases are the misbehaving servers "ncspv bench-hostile" measures
// ncspv against, each beside an honest server.
var hostileCases = []struct {
	name, what string
	hook       func(b *electrumxtest.Backend) electrumxtest.Hook
}{
	{"silent", "accepts the connection, never answers", func(*electrumxtest.Backend) electrumxtest.Hook {
		return func(electrumxtest.Request) *electrumxtest.Action { return &electrumxtest.Action{NoReply: true} }
	}},
	{"fake-tip", "announces a tip 100,000 blocks ahead, empty chunks past its real one", func(b *electrumxtest.Backend) electrumxtest.Hook {
		return func(r electrumxtest.Request) *electrumxtest.Action {
			if r.Method != "blockchain.headers.subscribe" {
				return nil
			}
			raw, _ := b.Header(b.Tip())
			return &electrumxtest.Action{Result: map[string]any{"height": b.Tip() + 100000, "hex": hex.EncodeToString(raw)}}
		}
	}},
	{"zeros-10MB", "answers every chunk with 10 MB of zeros (65,536 bare headers)", func(*electrumxtest.Backend) electrumxtest.Hook {
		zeros := strings.Repeat("0", 10<<20)
		return func(r electrumxtest.Request) *electrumxtest.Action {
			if r.Method != "blockchain.block.headers" {
				return nil
			}
			return &electrumxtest.Action{Result: map[string]any{"count": 126, "max": 2016, "hex": zeros}}
		}
	}},
	{"garbage-16MB", "answers every chunk with 16 MB of hex that parses as no header", func(*electrumxtest.Backend) electrumxtest.Hook {
		garbage := strings.Repeat("ab", 8<<20-64)
		return func(r electrumxtest.Request) *electrumxtest.Action {
			if r.Method != "blockchain.block.headers" {
				return nil
			}
			return &electrumxtest.Action{Result: map[string]any{"count": 126, "max": 2016, "hex": garbage}}
		}
	}},
	{"endless-line", "answers with a line that never ends", func(*electrumxtest.Backend) electrumxtest.Hook {
		return func(r electrumxtest.Request) *electrumxtest.Action {
			if r.Method == "server.version" {
				return nil
			}
			return &electrumxtest.Action{Endless: true}
		}
	}},
}

// HostileOptions are ncspv bench-hostile's: see its flags in cmd/ncspv.
type HostileOptions struct {
	Blocks    int // headers in the generated chain
	Handshake int // seconds a server may take to finish its handshake
}

// HostileCaseCount is how many hostile cases RunHostile measures.
func HostileCaseCount() int { return len(hostileCases) }

// RunHostile runs ncspv bench-hostile: each hostile case in a process of
// its own (HostileCaseCommand), so that its peak RSS is its own, with the
// servers in another (ServerCommand).
func RunHostile(c HostileOptions) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ask, stop, err := benchChild(ServerCommand, "--blocks", strconv.Itoa(c.Blocks), "--hostile")
	if err != nil {
		return err
	}
	defer stop()
	f, err := ask("")
	if err != nil || len(f) != 2+len(hostileCases) || f[0] != "ready" {
		return fmt.Errorf("bench server did not start: %v %v", f, err)
	}
	honest := f[1]
	fmt.Printf("Machine: %d CPUs, %s %s/%s, %s build. Chain: %d regtest AuxPoW headers. Handshake timeout %d s.\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, buildKind(), c.Blocks, c.Handshake)
	fmt.Println("Each case: a fresh store, one sync from the hostile server alone, then 5 syncs and 20 lookups with it and an honest server.")
	fmt.Println()
	fmt.Println("| case | requests to it | ncspv CPU | peak RSS | wall | outcome |")
	fmt.Println("|---|---|---|---|---|---|")
	for i, hc := range hostileCases {
		bad := f[2+i]
		out, err := exec.Command(self, HostileCaseCommand, "--honest", honest, "--bad", bad,
			"--handshake-timeout", strconv.Itoa(c.Handshake), "--blocks", strconv.Itoa(c.Blocks)).Output()
		if err != nil {
			return fmt.Errorf("case %s: %w", hc.name, err)
		}
		g, err := ask("count " + bad)
		if err != nil || len(g) != 1 {
			return fmt.Errorf("count: %v %v", g, err)
		}
		fmt.Printf("| %s: %s | %s | %s |\n", hc.name, hc.what, g[0], strings.TrimSpace(string(out)))
	}
	return nil
}

// HostileCaseOptions are one hostile case's, run in a hidden child
// (RunHostileCase) that prints "CPU | peak RSS | wall | outcome".
type HostileCaseOptions struct {
	Honest    string
	Bad       string
	Handshake int
	Blocks    int
}

// HostileCaseCommand is the hidden subcommand of ncspv that runs
// RunHostileCase.
const HostileCaseCommand = "bench-hostile-case"

// RunHostileCase runs one case of ncspv bench-hostile.
func RunHostileCase(c HostileCaseOptions, mem Memory) error {
	mem.Limit() // as the daemon does
	honest, err1 := electrumx.ParseServer(c.Honest)
	bad, err2 := electrumx.ParseServer(c.Bad)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ncspv-hostile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := &headers.RegTestParams
	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(filepath.Join(dir, "headers.db"), p, cp.Anchor(), headers.StoreOptions{})
	if err != nil {
		return err
	}
	defer store.Close()
	pool := electrumx.NewPool(electrumx.Config{HandshakeTimeout: time.Duration(c.Handshake) * time.Second})
	defer pool.Close()
	engine := func(servers ...electrumx.Server) (*spv.Engine, error) {
		return spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
			Servers: servers, Router: tor.NewRouter(tor.Direct), Pool: pool, QueryServers: 2, Confirmations: 1,
			RequestTimeout: 10 * time.Second})
	}
	ctx := context.Background()
	cpu0, t0 := cpuTime(), time.Now()
	alone, err := engine(bad)
	if err != nil {
		return err
	}
	aloneErr := alone.Sync(ctx)
	demoted := len(alone.Demoted()) > 0
	alone.Close()
	both, err := engine(bad, honest)
	if err != nil {
		return err
	}
	defer both.Close()
	var syncErr error
	for range 5 {
		if err := both.Sync(ctx); err != nil {
			syncErr = err
		}
	}
	answered := 0
	for i := range 20 {
		name := benchNames[i%len(benchNames)]
		if _, err := both.NameShow(ctx, []byte(name), spv.LookupOptions{StreamID: strconv.Itoa(i)}); err == nil {
			answered++
		}
	}
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	outcome := fmt.Sprintf("alone: %s; with an honest server: tip %d of %d, %d/20 lookups answered",
		describeSyncErr(aloneErr, demoted), store.Tip().Height, c.Blocks, answered)
	if syncErr != nil {
		outcome += fmt.Sprintf(" (a sync failed: %v)", syncErr)
	}
	fmt.Printf("%d ms | %.1f MiB | %.1f s | %s\n", cpu.Milliseconds(), float64(peakRSS())/(1<<20), wall.Seconds(), outcome)
	return nil
}

func describeSyncErr(err error, demoted bool) string {
	var le *spv.LieError
	switch {
	case err == nil:
		return "synced"
	case errors.As(err, &le) && demoted:
		return "caught lying, demoted"
	case errors.Is(err, electrumx.ErrStalled) && demoted:
		return "stalled, demoted"
	case demoted:
		return "refused, demoted"
	}
	return "failed: " + err.Error()
}

// hostileServers serves b honestly and once per hostile case, for
// "bench-server --hostile"; it returns their addresses, honest first.
func hostileServers(b *electrumxtest.Backend) ([]*electrumxtest.Server, error) {
	var out []*electrumxtest.Server
	honest, err := electrumxtest.NewServer(b, electrumxtest.Options{Pad: true})
	if err != nil {
		return nil, err
	}
	out = append(out, honest)
	for _, hc := range hostileCases {
		s, err := electrumxtest.NewServer(b, electrumxtest.Options{Pad: true})
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		s.SetHook(hc.hook(b))
		out = append(out, s)
	}
	return out, nil
}

func serveHostile(b *electrumxtest.Backend) error {
	servers, err := hostileServers(b)
	if err != nil {
		return err
	}
	byAddr := map[string]*electrumxtest.Server{}
	addrs := []string{"ready"}
	for _, s := range servers {
		defer s.Close()
		byAddr[s.Address().String()] = s
		addrs = append(addrs, s.Address().String())
	}
	fmt.Println(strings.Join(addrs, " "))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if f := strings.Fields(in.Text()); len(f) == 2 && f[0] == "count" && byAddr[f[1]] != nil {
			fmt.Println(byAddr[f[1]].Requests(""))
		}
	}
	return nil
}
