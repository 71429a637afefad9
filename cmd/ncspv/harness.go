package main

import (
	"os"

	"github.com/ncspv/ncspv/internal/bench"
	"github.com/ncspv/ncspv/internal/demo"
)

// The harnesses live in internal/bench and internal/demo; here are their flags
// and the hidden subcommands that run their fake servers in a child
// process, outside the measured one.

// daemonMemory is the daemon's memory policy, which the benchmarks apply
// to the measured process.
var daemonMemory = bench.Memory{Limit: func() { limitMemory(os.Getenv) }, Default: defaultMemoryLimit}

type benchCommand struct {
	Blocks     int    `long:"blocks" default:"20160" description:"Headers in the generated chain"`
	Coinbase   string `long:"coinbase" default:"1000-2000" description:"Size range of the generated parent coinbases in bytes, MIN-MAX (1000-2000 gives 2.0 KB headers; mainnet averaged 1.67 KB in 2019)"`
	Lookups    int    `long:"lookups" default:"2000" description:"Lookups measured at each concurrency"`
	ChunkSize  int    `long:"chunk-size" default:"0" description:"Headers per sync request (0: the engine's default)"`
	Pipeline   int    `long:"pipeline" default:"0" description:"Sync requests in flight (0: the engine's default)"`
	DataDir    string `long:"datadir" description:"Where the benchmark's header database goes (default: a temporary directory)"`
	CPUProfile string `long:"cpuprofile" description:"Write a CPU profile of the sync to this file"`
	LookupCPU  string `long:"lookup-cpuprofile" description:"Write a CPU profile of the 100 concurrent lookups on protocol 1.4.3 to this file"`

	FirstAnswer     int `long:"first-answer-headers" default:"332700" description:"Headers after the checkpoint of the simulated mainnet-shaped chain on which a fresh install's first name_show is timed, sampled sync (0 skips the comparison)"`
	FirstAnswerFull int `long:"first-answer-full-headers" default:"33270" description:"Headers of the chain the full sync is timed on; its bytes and time grow linearly and are scaled up to --first-answer-headers (the full sync of 332,700 headers at 1 MiB/s takes about 20 minutes)"`
	FirstSetup      int `long:"first-answer-setup" default:"2000" description:"Emulated Tor link for the comparison: milliseconds to build a new circuit"`
	FirstOneWay     int `long:"first-answer-oneway" default:"250" description:"Emulated Tor link: milliseconds each way"`
	FirstRate       int `long:"first-answer-rate" default:"1048576" description:"Emulated Tor link: bytes per second each way and connection (0: no cap)"`
}

func (c *benchCommand) Execute([]string) error {
	return bench.RunSync(bench.SyncOptions(*c), daemonMemory)
}

// benchServerCommand runs ncspv bench's and bench-hostile's fake servers.
type benchServerCommand struct {
	Blocks      int  `long:"blocks" default:"20160"`
	MinCoinbase int  `long:"min-coinbase" default:"1000"`
	MaxCoinbase int  `long:"max-coinbase" default:"2000"`
	Hostile     bool `long:"hostile"`
}

func (c *benchServerCommand) Execute([]string) error {
	return bench.Serve(bench.ServerOptions(*c))
}

type benchLookupsCommand struct {
	Sequential   int    `long:"sequential" default:"10" description:"Lookups per sequential case"`
	Flood        int    `long:"flood" default:"2000" description:"Lookups, each with its own stream ID, in the memory case"`
	Link         string `long:"link" default:"2000,250,1048576" description:"Emulated Tor link: circuit setup ms, one-way delay ms, bytes per second"`
	FloodOnly    bool   `long:"flood-only" description:"Only the memory case"`
	LoopbackOnly bool   `long:"loopback-only" description:"Leave out the emulated Tor link (minutes of waiting for circuits)"`
	Recording    string `long:"recording" description:"Serve the chain and names of a recording of real Namecoin Core regtest and ElectrumX (../shared/vectors/regtest-recording.json) instead of the generated chain"`
}

func (c *benchLookupsCommand) Execute([]string) error {
	return bench.RunLookups(bench.LookupsOptions(*c), daemonMemory)
}

// benchLookupServerCommand runs bench-lookups' servers and proxies.
type benchLookupServerCommand struct {
	Link      string `long:"link" default:"2000,250,1048576"`
	Recording string `long:"recording"`
}

func (c *benchLookupServerCommand) Execute([]string) error {
	return bench.ServeLookups(bench.LookupServerOptions(*c))
}

type benchHostileCommand struct {
	Blocks    int `long:"blocks" default:"2016" description:"Headers in the generated chain"`
	Handshake int `long:"handshake-timeout" default:"5" description:"Seconds a server may take to finish its handshake (the daemon's default is 45)"`
}

func (c *benchHostileCommand) Execute([]string) error {
	return bench.RunHostile(bench.HostileOptions(*c))
}

// benchHostileCaseCommand runs one case of bench-hostile.
type benchHostileCaseCommand struct {
	Honest    string `long:"honest"`
	Bad       string `long:"bad"`
	Handshake int    `long:"handshake-timeout" default:"5"`
	Blocks    int    `long:"blocks" default:"2016"`
}

func (c *benchHostileCaseCommand) Execute([]string) error {
	return bench.RunHostileCase(bench.HostileCaseOptions(*c), daemonMemory)
}

type demoCommand struct {
	Blocks  int    `long:"blocks" default:"5000" description:"Number of regtest headers to generate and verify"`
	DataDir string `long:"datadir" description:"Keep the header database here (default: a temporary directory, removed afterwards)"`
	Seed    uint64 `long:"seed" default:"1" description:"Seed of the generated chain"`
}

func (c *demoCommand) Execute([]string) error { return demo.Run(demo.Options(*c)) }
