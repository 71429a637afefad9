// Command ncspv is a lightweight Namecoin SPV client: a daemon that serves
// name_show to ncprop279 over JSON-RPC, with subcommands for one-off
// lookups, syncing, status, an offline demo and a benchmark.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	flags "github.com/jessevdk/go-flags"
	"github.com/ncspv/ncspv/internal/bench"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// activeConfig is the loaded configuration the running command reads;
// activeParser is its parser (for the man page).
var (
	activeConfig *config
	activeParser *flags.Parser
)

// versionFlag is parsed with the other options.
func addCommands(p *flags.Parser) error {
	cmds := []struct {
		name, short, long string
		data              any
		hidden            bool
	}{
		{"daemon", "Run the daemon (the default)", "Syncs headers and serves the JSON-RPC until SIGINT, SIGTERM or the RPC stop.", &daemonCommand{}, false},
		{"name-show", "Look one name up", "Looks NAME up and prints Namecoin Core's name_show result: locally (syncing first) or, when a daemon holds the database, through that daemon's RPC (--rpcconnect names another address).", &nameShowCommand{}, false},
		{"prop279", "Speak Tor's Prop279 naming protocol on stdin/stdout (like ncprop279)",
			"Answers RESOLVE/CANCEL lines from StemNS (or any Prop279 client) with the " +
				"onion, IP address or host name a .bit name maps to, through the local " +
				"engine or, with --rpcconnect, a running daemon.", &prop279Command{}, false},
		{"sync", "Sync headers and exit", "Syncs block headers from the checkpoint or the stored tip to the servers' tip and exits.", &syncCommand{}, false},
		{"status", "Show the chain state", "Prints the stored chain state, or asks the running daemon (which holds the database).", &statusCommand{}, false},
		{"demo", "Verify and store a generated regtest chain, offline",
			"Generates a Namecoin regtest header chain whose blocks carry real " +
				"AuxPoW structure, verifies every header with Namecoin Core's rules, " +
				"stores it, shows a tampered header, a weaker branch and a heavier " +
				"branch being handled, then a verified name_show from two fake " +
				"ElectrumX servers on loopback. Needs no network.", &demoCommand{}, false},
		{"bench", "Measure sync and lookups against local fake servers",
			"Generates a regtest chain served by fake ElectrumX servers in a child " +
				"process on loopback, then reports sync throughput (and its ratio to " +
				"the raw transfer time), round trips per lookup, lookup latency " +
				"p50/p99 at 1 and 100 concurrent lookups, and peak RSS.", &benchCommand{}, false},
		{"checkpoint", "Build a checkpoint from a trusted Namecoin Core (release managers)",
			"Asks a trusted Namecoin Core for every block hash up to the checkpoint height " +
				"and prints the checkpoint: the cp_height merkle root over them, the last " +
				"retarget period end below it with its hash, time and chain work, and the " +
				"next period's bits.", &checkpointCommand{}, false},
		{"bench-hostile", "Measure what hostile servers cost",
			"Runs ncspv against fake ElectrumX servers on loopback that misbehave " +
				"(silent, a fake tip, huge replies, a line without end), each beside " +
				"an honest one, and reports per case the requests made to it, ncspv's " +
				"CPU and peak RSS, and the outcome.", &benchHostileCommand{}, false},
		{"bench-lookups", "Measure lookups as ncprop279 makes them, through an emulated Tor link",
			"Runs name lookups against fake ElectrumX servers (1.20 and 1.18 hold timers, one silent) " +
				"through a SOCKS proxy on loopback and through one that emulates Tor (circuit setup per " +
				"credential pair, one-way delay, rate cap), and reports per case the latency p50/p99, bytes " +
				"and round trips per lookup, then the peak RSS of a flood of lookups with as many stream IDs.",
			&benchLookupsCommand{}, false},
		{bench.ServerCommand, "", "", &benchServerCommand{}, true},
		{bench.LookupServerCommand, "", "", &benchLookupServerCommand{}, true},
		{bench.HostileCaseCommand, "", "", &benchHostileCaseCommand{}, true},
		{"manpage", "Write the man page (troff) to standard output", "Writes ncspv(1) generated from the options; SOURCE_DATE_EPOCH sets its date.", &manPageCommand{}, true},
	}
	for _, c := range cmds {
		cmd, err := p.AddCommand(c.name, c.short, c.long, c.data)
		if err != nil {
			return err
		}
		cmd.Hidden = c.hidden
	}
	p.SubcommandsOptional = true
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv))
}

// run loads the configuration and runs the chosen command (the daemon
// without one). It returns the exit status.
func run(args []string, getenv func(string) string) int {
	var chosen flags.Commander
	var chosenArgs []string
	withCommands := func(p *flags.Parser) error {
		// Commands run after all configuration is loaded, not while the
		// command line is parsed.
		p.CommandHandler = func(cmd flags.Commander, a []string) error {
			chosen, chosenArgs = cmd, a
			return nil
		}
		return addCommands(p)
	}
	cfg, parser, rest, err := loadConfig(args, getenv, withCommands)
	var ferr *flags.Error
	if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
		fmt.Fprint(os.Stdout, ferr.Message)
		return 0
	}
	if slices.Contains(args, "--version") || slices.Contains(args, "-V") {
		printVersion()
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ncspv:", err)
		if hint := usageHint(args, err); hint != "" {
			fmt.Fprintln(os.Stderr, "ncspv:", hint)
		}
		return 2
	}
	// A mistyped command must not start the daemon, and no command takes
	// more arguments than its own.
	switch {
	case chosen == nil && len(rest) > 0:
		fmt.Fprintf(os.Stderr, "ncspv: unknown command %q (see ncspv --help)\n", rest[0])
		if alt := strings.ReplaceAll(rest[0], "_", "-"); alt != rest[0] {
			fmt.Fprintf(os.Stderr, "ncspv: did you mean %q? (the RPC method is name_show, the command name-show)\n", alt)
		}
		return 2
	case len(chosenArgs) > 0:
		fmt.Fprintf(os.Stderr, "ncspv: unexpected argument %q (see ncspv --help)\n", chosenArgs[0])
		return 2
	}
	// A bad value is a usage error (exit 2), wherever it was set, and
	// says where when a config file set it.
	if _, offline := chosen.(offlineCommand); offline {
		// Needs no network, data directory or server (manpage, bench,
		// demo, checkpoint): nothing of the config to check.
	} else if _, err := cfg.resolve(getenv); err != nil {
		fmt.Fprintln(os.Stderr, "ncspv:", withSource(err, cfg.sources))
		return 2
	}
	activeConfig, activeParser = cfg, parser
	if chosen == nil {
		chosen = &daemonCommand{}
	}
	if err := chosen.Execute(chosenArgs); err != nil {
		fmt.Fprintln(os.Stderr, "ncspv:", err)
		return 1
	}
	return 0
}

// offlineCommand is a command that uses none of the node's settings.
type offlineCommand interface{ offline() }

func (*manPageCommand) offline()           {}
func (*benchCommand) offline()             {}
func (*benchServerCommand) offline()       {}
func (*benchHostileCommand) offline()      {}
func (*benchHostileCaseCommand) offline()  {}
func (*benchLookupsCommand) offline()      {}
func (*benchLookupServerCommand) offline() {}
func (*demoCommand) offline()              {}
func (*checkpointCommand) offline()        {}

// usageHint suggests what a Namecoin Core or Electrum-NMC user may have
// meant.
func usageHint(args []string, err error) string {
	for _, a := range args {
		switch {
		case a == "-conf" || strings.HasPrefix(a, "-conf=") || a == "--conf" || strings.HasPrefix(a, "--conf="):
			return "the config file option is --configfile (Core's -conf)"
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 2:
			return fmt.Sprintf("options take two dashes: --%s, not %s", strings.TrimPrefix(a, "-"), a)
		}
	}
	return ""
}

// withSource adds where a config file set the option an error is about.
func withSource(err error, sources map[string]string) error {
	msg := err.Error()
	for name, at := range sources {
		if strings.Contains(msg, "--"+name+" ") || strings.Contains(msg, "--"+name+"=") || strings.HasSuffix(msg, "--"+name) {
			return fmt.Errorf("%w (%s set at %s)", err, name, at)
		}
	}
	return err
}

func printVersion() {
	fmt.Printf("ncspv %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			fmt.Printf("  %s %s\n", d.Path, d.Version)
		}
	}
}

// manPageCommand writes ncspv(1).
type manPageCommand struct{}

func (c *manPageCommand) Execute([]string) error {
	activeParser.WriteManPage(os.Stdout)
	_, err := fmt.Fprint(os.Stdout, manPageTail)
	return err
}

// manPageTail is what go-flags does not write: the config rules, files,
// environment, exit status and related programs.
const manPageTail = `.SH CONFIGURATION
Every option is also a config file key without its dashes (\fBconfirmations=12\fP), as in
Namecoin Core: one key=value a line, \fB#\fP starts a comment anywhere on a line (so values
cannot hold one), \fB;\fP at the start of a line too, and a repeated key repeats the option
(\fBserver\fP). Settings under \fB[main]\fP, \fB[test]\fP or \fB[regtest]\fP apply to that network
only. Booleans take 1 or 0 (also on the command line: \fB--regtest=1\fP). Later files win over
earlier ones, and the command line over all; a bad value names the file and line that set it.
.SH FILES
.TP
\fB/etc/ncspv/ncspv.conf\fP, \fB/etc/ncspv/ncspv.d/*.conf\fP
System configuration, then its drop-ins in lexical order (dotfiles, \fB~\fP backups and
\fB.dpkg-*\fP files skipped).
.TP
\fB$XDG_CONFIG_HOME/ncspv/ncspv.conf\fP (default \fB~/.config/ncspv/ncspv.conf\fP) and its \fBncspv.d/\fP
The user's configuration, read after the system's.
.TP
\fB<datadir>/<network>/headers.db\fP
Verified block headers (bbolt). It holds nothing that a sync does not fetch again: a damaged
one may be deleted.
.TP
\fB<datadir>/<network>/tls-pins.json\fP
Pinned TLS certificates of the ElectrumX servers. Delete an entry to accept a server's new
certificate.
.TP
\fB<datadir>/<network>/.cookie\fP, or \fB$RUNTIME_DIRECTORY/.cookie\fP under systemd
RPC credentials (\fB__cookie__:\fP\fIpassword\fP), written at start and removed at exit when no
\fB--rpcpass\fP is set.
.SH ENVIRONMENT
.TP
\fBNCSPV_CONFDIR\fP
Directory of the system configuration instead of \fB/etc/ncspv\fP.
.TP
\fBSTATE_DIRECTORY\fP, \fBRUNTIME_DIRECTORY\fP
Set by systemd: the default data directory and the cookie's directory.
.TP
\fBXDG_DATA_HOME\fP, \fBXDG_CONFIG_HOME\fP, \fBHOME\fP
Default data and user config directories.
.TP
\fBTOR_SOCKS_HOST\fP, \fBTOR_SOCKS_PORT\fP, \fBTOR_SOCKS_IPC_PATH\fP
Tor Browser's SOCKS proxy, used when \fB--proxy\fP is not given.
.TP
\fBGOMEMLIMIT\fP
Go's soft memory limit; ncspv sets 16 MiB when it is unset.
.SH EXIT STATUS
0 on success; 1 when the command failed (no server reachable, a name that cannot be shown);
2 for a usage error: an unknown command or option, or a bad value on the command line or in a
config file.
.SH SEE ALSO
.BR tor (1),
.BR namecoind (1),
.BR ncprop279 (1),
.BR systemd.exec (5)
`
