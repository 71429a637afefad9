package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
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
	Version    bool     `short:"V" long:"version" description:"Print version information and exit" no-ini:"true"`

	// sources says where each option set by a config file was set
	// (file:line), for errors about its value.
	sources map[string]string

	Servers       []string `long:"server" description:"ElectrumX server, tcp://host:port, ssl://host:port or host:port:s; repeatable (default: the public Namecoin servers on mainnet)"`
	Proxy         string   `long:"proxy" description:"Tor SOCKS proxy: host:port, unix:/path, or none to connect directly (default: Tor Browser's TOR_SOCKS_* variables, else 127.0.0.1:9050)"`
	AllowClearnet bool     `long:"allow-clearnet" description:"Allow --proxy=none on mainnet (connections then reveal your IP address to the servers)"`

	TorControl         string `long:"torcontrol" description:"Tor control port (host:port) or socket (unix:/path, e.g. Debian's unix:/run/tor/control) at which the daemon resolves .bit streams itself, in place of StemNS + ncprop279; cookie and safecookie auth are automatic"`
	TorControlPassword string `long:"torpassword" default-mask:"-" description:"Tor control port password (HashedControlPassword), if cookie authentication is off"`

	RPCListen      []string `long:"rpclisten" description:"Address for the JSON-RPC server; repeatable (default 127.0.0.1:8336 on mainnet, 127.0.0.1:18336 on testnet, 127.0.0.1:18443 on regtest)"`
	RPCUser        string   `long:"rpcuser" description:"RPC user name (with --rpcpass; else a cookie file is used)"`
	RPCPass        string   `long:"rpcpass" default-mask:"-" description:"RPC password"`
	RPCCookiePerms string   `long:"rpccookieperms" default:"owner" choice:"owner" choice:"group" choice:"all" description:"Who may read the cookie file: owner (0600), group (0640) or all (0644), as Namecoin Core's -rpccookieperms"`
	RPCCookieGroup string   `long:"rpccookiegroup" description:"Group of the cookie file (e.g. debian-tor, so that ncprop279 run by Tor can read it with --rpccookieperms=group); the daemon must be a member"`
	RPCCookie      string   `long:"rpccookie" description:"Cookie file for RPC authentication (default: <datadir>/<network>/.cookie, or $RUNTIME_DIRECTORY/.cookie under systemd)"`
	Confirmations  int      `long:"confirmations" default:"12" description:"Confirmations a name update should have: the newest update this deep answers while live; a fresher one answers only when none is"`
	LookupDeadline int      `long:"lookupdeadline" default:"1200" description:"Milliseconds after which a lookup answers with the newest verified answer in hand instead of waiting for slower servers (ncprop279 and ncdns give up after 1500); a lookup whose caller gave up goes on and is cached for the retry"`
	NoSampledSync  bool     `long:"nosampledsync" description:"On a long catch-up take every header in full (1.1 GB of hex, 1.4 GB as ElectrumX pads it, through Tor from the built-in checkpoint as of late 2026) instead of 80-byte headers whose proof of work is checked by random sample, then in full in the background"`
	NoFullVerify   bool     `long:"nofullverify" description:"After a sampled catch-up, leave the rest of the proof of work unchecked instead of checking it in the background (getblockchaininfo then keeps saying \"sampled\")"`
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

// systemCookie is where the packaged unit's daemon writes its cookie
// (RuntimeDirectory=ncspv): the command-line tools look there too.
var systemCookie = "/run/ncspv/.cookie"

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
	args, err := boolArgs(parser, args)
	if err != nil {
		return nil, parser, nil, err
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
	var all []string
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			if explicit {
				return nil, nil, nil, fmt.Errorf("config file %s: %w", f, err)
			}
			continue
		}
		extra, err := dropIns(filepath.Join(filepath.Dir(f), "ncspv.d"))
		if err != nil {
			return nil, nil, nil, err
		}
		all = append(append(all, f), extra...)
	}
	// The network decides which [main], [test] or [regtest] section
	// applies: the command line's, else the files' top-level settings.
	network := "main"
	switch {
	case pre.TestNet:
		network = "test"
	case pre.RegTest:
		network = "regtest"
	default:
		for _, f := range all {
			if n := topLevelNetwork(f); n != "" {
				network = n
			}
		}
	}
	ini := flags.NewIniParser(parser)
	sources := map[string]string{}
	for _, f := range all {
		text, err := normalizeConfig(f, network, sources)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := ini.Parse(strings.NewReader(text)); err != nil {
			return nil, nil, nil, configError(f, err)
		}
	}
	rest, err := parser.ParseArgs(args)
	if err != nil {
		return nil, parser, nil, err
	}
	cfg.sources = sources
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		delete(sources, name) // the command line wins
	}
	return cfg, parser, rest, nil
}

// networkSections are Namecoin Core's config sections: what is in one
// applies only on that network.
var networkSections = map[string]bool{"main": true, "test": true, "regtest": true}

// normalizeConfig reads a config file the way Namecoin Core reads its
// own, for go-flags' ini parser, line for line (so that errors keep their
// line numbers): a '#' starts a comment anywhere on a line; [main],
// [test] and [regtest] hold settings for that network only (network is
// the one in use); [Application Options] (what ncspv's sample had) is the
// top level. It records in sources where each option was set.
func normalizeConfig(path, network string, sources map[string]string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	lines := strings.Split(string(b), "\n")
	section := ""
	for i, line := range lines {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, ";"):
			line = ""
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			name := strings.TrimSpace(line[1 : len(line)-1])
			switch {
			case name == "" || name == "Application Options":
				section = ""
			case networkSections[name]:
				section = name
			default:
				return "", fmt.Errorf("%s:%d: unknown section [%s]: ncspv knows [main], [test] and [regtest], whose settings apply to that network only", path, i+1, name)
			}
			line = ""
		case section != "" && section != network:
			line = "" // another network's setting
		default:
			key, _, _ := strings.Cut(line, "=")
			sources[strings.TrimSpace(key)] = fmt.Sprintf("%s:%d", path, i+1)
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n"), nil
}

// topLevelNetwork is the network a config file selects at its top level
// ("test", "regtest", or "" for none).
func topLevelNetwork(path string) string {
	text, err := normalizeConfig(path, "", map[string]string{})
	if err != nil {
		return ""
	}
	network := ""
	for _, line := range strings.Split(text, "\n") {
		key, value, _ := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if on, err := strconv.ParseBool(cmp.Or(value, "1")); err == nil && on {
			switch key {
			case "testnet":
				network = "test"
			case "regtest":
				network = "regtest"
			}
		}
	}
	return network
}

// boolArgs lets a boolean flag take a value, as the sample config says
// every key does (--regtest=1, --follow=0): go-flags takes none.
func boolArgs(p *flags.Parser, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		opt := p.FindOptionByLongName(name)
		if !ok || !strings.HasPrefix(a, "--") || opt == nil {
			out = append(out, a)
			continue
		}
		if _, isBool := opt.Value().(bool); !isBool {
			out = append(out, a)
			continue
		}
		on, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("--%s takes 1 or 0 (true or false), not %q", name, value)
		}
		if on {
			out = append(out, "--"+name)
		}
	}
	return out, nil
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
	// cookieFallbacks are read by clients when cookie is not there: the
	// system daemon's (its unit's RuntimeDirectory).
	cookieFallbacks []string
	cookieMode      os.FileMode
	cookieGID       int
	logLevel        slog.Level
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
	if len(r.servers) == 0 && p == &headers.MainNetParams {
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
			r.cookieFallbacks = []string{systemCookie}
		}
	}
	r.cookieMode = map[string]os.FileMode{"owner": 0o600, "group": 0o640, "all": 0o644}[c.RPCCookiePerms]
	r.cookieGID = -1
	if c.RPCCookieGroup != "" {
		g, err := user.LookupGroup(c.RPCCookieGroup)
		if err != nil {
			return nil, fmt.Errorf("--rpccookiegroup: %w", err)
		}
		r.cookieGID, _ = strconv.Atoi(g.Gid)
	}
	if c.TorControl != "" {
		if _, _, err := tor.ParseControlAddr(c.TorControl); err != nil {
			return nil, err
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
