package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	flags "github.com/jessevdk/go-flags"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/tor"
)

// config is every setting; each is a flag and a config-file key (the
// long name). Precedence: defaults < config files (system, then user) <
// their ncspv.d/*.conf drop-ins in lexical order < command-line flags.
type config struct {
	ConfigFile []string `long:"configfile" description:"Config file to read instead of the defaults (/etc/ncspv/ncspv.conf, then $XDG_CONFIG_HOME/ncspv/ncspv.conf); repeatable; each also reads the ncspv.d/*.conf beside it" no-ini:"true"`
	DataDir    string   `long:"datadir" description:"Directory for the header database and TLS pins (default: $STATE_DIRECTORY under systemd, else $XDG_DATA_HOME/ncspv)"`
	TestNet    bool     `long:"testnet" description:"Use Namecoin testnet"`
	RegTest    bool     `long:"regtest" description:"Use Namecoin regtest"`

	Servers       []string `long:"server" description:"ElectrumX server, tcp://host:port, ssl://host:port or host:port:s; repeatable (default: the public Namecoin servers on mainnet)"`
	Proxy         string   `long:"proxy" description:"Tor SOCKS proxy: host:port, unix:/path, or none to connect directly (default: Tor Browser's TOR_SOCKS_* variables, else 127.0.0.1:9050)"`
	AllowClearnet bool     `long:"allow-clearnet" description:"Allow --proxy=none on mainnet (connections then reveal your IP address to the servers)"`

	TorControl         string `long:"torcontrol" description:"Tor control port (host:port) at which the daemon resolves .bit streams itself, in place of StemNS + ncprop279; cookie and safecookie auth are automatic"`
	TorControlPassword string `long:"torpassword" default-mask:"-" description:"Tor control port password (HashedControlPassword), if cookie authentication is off"`

	RPCListen      []string `long:"rpclisten" description:"Address for the JSON-RPC server; repeatable (default 127.0.0.1:8336 on mainnet, 127.0.0.1:18336 on testnet, 127.0.0.1:18443 on regtest)"`
	RPCUser        string   `long:"rpcuser" description:"RPC user name (with --rpcpass; else a cookie file is used)"`
	RPCPass        string   `long:"rpcpass" default-mask:"-" description:"RPC password"`
	RPCCookie      string   `long:"rpccookie" description:"Cookie file for RPC authentication (default: <datadir>/<network>/.cookie, or $RUNTIME_DIRECTORY/.cookie under systemd)"`
	Confirmations  int      `long:"confirmations" default:"12" description:"Confirmations a name update should have: the newest update this deep answers while live; a fresher one answers only when none is"`
	LookupDeadline int      `long:"lookupdeadline" default:"1200" description:"Milliseconds after which a lookup answers with the newest verified answer in hand instead of waiting for slower servers (ncprop279 and ncdns give up after 1500); a lookup whose caller gave up goes on and is cached for the retry"`
	Follow         bool     `long:"follow" description:"Keep syncing while idle (otherwise a lookup catches up first, and an idle ncspv makes no traffic)"`
	DebugLevel     string   `long:"debuglevel" default:"info" description:"Log level: debug, info, warn or error (names and stream IDs are logged at debug only)"`
}

// network returns the chain parameters the flags select.
func (c *config) network() (*headers.Params, error) {
	switch {
	case c.TestNet && c.RegTest:
		return nil, errors.New("--testnet and --regtest are exclusive")
	case c.TestNet:
		return &headers.TestNetParams, nil
	case c.RegTest:
		return &headers.RegTestParams, nil
	}
	return &headers.MainNetParams, nil
}

// systemConfigDir holds the system-wide config ($NCSPV_CONFDIR overrides
// it); tests point it at a directory of their own, so that what is
// installed on the machine never changes their outcome.
var systemConfigDir = "/etc/ncspv"

// defaultConfigFiles are read in this order when --configfile is not
// given; missing ones are skipped.
func defaultConfigFiles(getenv func(string) string) []string {
	sysDir := systemConfigDir
	if d := getenv("NCSPV_CONFDIR"); d != "" {
		sysDir = d
	}
	files := []string{filepath.Join(sysDir, "ncspv.conf")}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		files = append(files, filepath.Join(x, "ncspv", "ncspv.conf"))
	} else if h := getenv("HOME"); h != "" {
		files = append(files, filepath.Join(h, ".config", "ncspv", "ncspv.conf"))
	}
	return files
}

// dropIns lists dir's *.conf files in lexical order, skipping dotfiles,
// editor backups (~) and dpkg leftovers (.dpkg-*), as systemd does.
func dropIns(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") ||
			strings.Contains(n, ".dpkg-") || !strings.HasSuffix(n, ".conf") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

// loadConfig applies defaults, config files and drop-ins, then the
// command line again so that flags win. It returns the parser for the
// subcommand dispatch.
func loadConfig(args []string, getenv func(string) string, commands func(*flags.Parser) error) (*config, *flags.Parser, []string, error) {
	cfg := &config{}
	parser := newParser(cfg)
	if err := commands(parser); err != nil {
		return nil, nil, nil, err
	}
	// First pass: only to find --configfile (and --help / --version).
	pre := &config{}
	preParser := newParser(pre)
	preParser.Options |= flags.IgnoreUnknown
	if err := commands(preParser); err != nil {
		return nil, nil, nil, err
	}
	if _, err := preParser.ParseArgs(args); err != nil {
		var ferr *flags.Error
		if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
			return nil, preParser, nil, err
		}
	}
	files := pre.ConfigFile
	explicit := len(files) > 0
	if !explicit {
		files = defaultConfigFiles(getenv)
	}
	ini := flags.NewIniParser(parser)
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			if explicit {
				return nil, nil, nil, fmt.Errorf("config file %s: %w", f, err)
			}
			continue
		}
		if err := ini.ParseFile(f); err != nil {
			return nil, nil, nil, configError(f, err)
		}
		extra, err := dropIns(filepath.Join(filepath.Dir(f), "ncspv.d"))
		if err != nil {
			return nil, nil, nil, err
		}
		for _, d := range extra {
			if err := ini.ParseFile(d); err != nil {
				return nil, nil, nil, configError(d, err)
			}
		}
	}
	rest, err := parser.ParseArgs(args)
	if err != nil {
		return nil, parser, nil, err
	}
	return cfg, parser, rest, nil
}

// configError names the file and line of a bad config entry.
func configError(file string, err error) error {
	var ie *flags.IniError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s:%d: %s", file, ie.LineNumber, ie.Message)
	}
	return fmt.Errorf("%s: %w", file, err)
}

func newParser(cfg *config) *flags.Parser {
	p := flags.NewParser(cfg, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = "ncspv"
	p.ShortDescription = "lightweight Namecoin SPV client"
	p.LongDescription = "ncspv resolves Namecoin names for Tor users: it syncs Namecoin " +
		"block headers (AuxPoW, merge-mined with Bitcoin) from a built-in checkpoint, " +
		"verifies each with Namecoin Core's rules, asks ElectrumX servers through Tor " +
		"with a separate circuit per lookup stream ID, proves every answer against its " +
		"own headers and serves name_show over JSON-RPC for ncprop279. Without a " +
		"command it runs the daemon. It keeps its memory small with a soft limit " +
		"of 16 MiB (GOMEMLIMIT=16MiB) unless GOMEMLIMIT is set."
	return p
}

// resolved is the configuration after defaults that depend on the network
// and the environment.
type resolved struct {
	params    *headers.Params
	netDir    string
	servers   []electrumx.Server
	proxy     tor.Proxy
	rpcListen []string
	cookie    string
	logLevel  slog.Level
}

var defaultRPCPort = map[string]string{"mainnet": "8336", "testnet": "18336", "regtest": "18443"}

// resolve checks values and fills network- and environment-dependent
// defaults.
func (c *config) resolve(getenv func(string) string) (*resolved, error) {
	p, err := c.network()
	if err != nil {
		return nil, err
	}
	r := &resolved{params: p}
	dataDir := c.DataDir
	if dataDir == "" {
		switch {
		case getenv("STATE_DIRECTORY") != "":
			dataDir = strings.Split(getenv("STATE_DIRECTORY"), ":")[0]
		case getenv("XDG_DATA_HOME") != "":
			dataDir = filepath.Join(getenv("XDG_DATA_HOME"), "ncspv")
		case getenv("HOME") != "":
			dataDir = filepath.Join(getenv("HOME"), ".local", "share", "ncspv")
		default:
			return nil, errors.New("no data directory: set --datadir")
		}
	}
	r.netDir = filepath.Join(dataDir, p.Name)
	for _, s := range c.Servers {
		srv, err := electrumx.ParseServer(s)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, srv)
	}
	if len(r.servers) == 0 {
		if p != &headers.MainNetParams {
			return nil, fmt.Errorf("no --server given; %s has no public servers", p.Name)
		}
		r.servers = electrumx.DefaultServers()
	}
	switch {
	case c.Proxy != "":
		if r.proxy, err = tor.ParseProxy(c.Proxy); err != nil {
			return nil, err
		}
	default:
		envProxy, ok, err := tor.ProxyFromEnv(getenv)
		if err != nil {
			return nil, err
		}
		r.proxy = tor.DefaultProxy
		if ok {
			r.proxy = envProxy
		}
	}
	if r.proxy.IsDirect() && p == &headers.MainNetParams && !c.AllowClearnet {
		return nil, errors.New("--proxy=none on mainnet reveals your IP address to the servers; add --allow-clearnet if you mean it")
	}
	r.rpcListen = c.RPCListen
	if len(r.rpcListen) == 0 {
		r.rpcListen = []string{"127.0.0.1:" + defaultRPCPort[p.Name]}
	}
	if (c.RPCUser == "") != (c.RPCPass == "") {
		return nil, errors.New("--rpcuser and --rpcpass go together")
	}
	r.cookie = c.RPCCookie
	if r.cookie == "" {
		if rd := getenv("RUNTIME_DIRECTORY"); rd != "" {
			r.cookie = filepath.Join(strings.Split(rd, ":")[0], ".cookie")
		} else {
			r.cookie = filepath.Join(r.netDir, ".cookie")
		}
	}
	if c.LookupDeadline < 1 {
		return nil, fmt.Errorf("--lookupdeadline must be at least 1 (milliseconds), got %d", c.LookupDeadline)
	}
	if c.Confirmations < 1 {
		return nil, fmt.Errorf("--confirmations must be at least 1, got %d", c.Confirmations)
	}
	if err := r.logLevel.UnmarshalText([]byte(c.DebugLevel)); err != nil {
		return nil, fmt.Errorf("--debuglevel %q: want debug, info, warn or error", c.DebugLevel)
	}
	return r, nil
}
