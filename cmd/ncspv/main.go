// Command ncspv is a lightweight Namecoin SPV client.
//
// This build has the verified header chain (AuxPoW codec, Namecoin Core's
// header rules, the built-in mainnet checkpoint and the bbolt store) and a
// demo that exercises it offline. Name lookups over ElectrumX and the RPC
// server come later.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	flags "github.com/jessevdk/go-flags"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type options struct {
	Version bool `short:"V" long:"version" description:"Print version information and exit"`
}

func main() {
	var opts options
	parser := flags.NewParser(&opts, flags.HelpFlag|flags.PassDoubleDash)
	parser.Name = "ncspv"
	parser.ShortDescription = "lightweight Namecoin SPV client"
	parser.LongDescription = "ncspv verifies Namecoin block headers (AuxPoW, " +
		"merge-mined with Bitcoin) with Namecoin Core's own rules from a " +
		"built-in checkpoint and stores them in a bbolt database."
	parser.SubcommandsOptional = true

	demo := &demoCommand{}
	if _, err := parser.AddCommand("demo", "Verify and store a generated regtest chain, offline",
		"Generates a Namecoin regtest header chain whose blocks carry real "+
			"AuxPoW structure, verifies every header with Namecoin Core's rules, "+
			"stores it, then shows a tampered header, a weaker branch and a "+
			"heavier branch being handled. Needs no network.", demo); err != nil {
		fatal(err)
	}

	if _, err := parser.AddCommand("bench", "Measure sync and lookups against local fake servers",
		"Generates a regtest chain served by fake ElectrumX servers in a child "+
			"process on loopback, then reports sync throughput (and its ratio to "+
			"the raw transfer time), round trips per lookup, lookup latency "+
			"p50/p99 at 1 and 100 concurrent lookups, and peak RSS.", &benchCommand{}); err != nil {
		fatal(err)
	}
	hidden, err := parser.AddCommand("bench-server", "", "", &benchServerCommand{})
	if err != nil {
		fatal(err)
	}
	hidden.Hidden = true

	_, err = parser.Parse()
	var ferr *flags.Error
	if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
		fmt.Fprint(os.Stdout, ferr.Message)
		return
	}
	if err != nil {
		fatal(err)
	}
	if opts.Version {
		printVersion()
		return
	}
	if parser.Active == nil {
		parser.WriteHelp(os.Stderr)
		os.Exit(2)
	}
}

func printVersion() {
	fmt.Printf("ncspv %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			fmt.Printf("  %s %s\n", d.Path, d.Version)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "ncspv:", err)
	os.Exit(1)
}
