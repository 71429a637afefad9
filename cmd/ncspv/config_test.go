package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	flags "github.com/jessevdk/go-flags"
	"github.com/ncspv/ncspv/tor"
)

func noCommands(*flags.Parser) error { return nil }

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConfigPrecedence: defaults < config file < drop-ins (lexical) <
// flags; dotfiles, backups and dpkg leftovers are skipped.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ncspv.conf")
	write(t, conf, "[Application Options]\nconfirmations=5\ndebuglevel=debug\nserver=tcp://a:1\n")
	write(t, filepath.Join(dir, "ncspv.d", "20-b.conf"), "confirmations=7\ndebuglevel=warn\n")
	write(t, filepath.Join(dir, "ncspv.d", "10-a.conf"), "confirmations=6\n")
	write(t, filepath.Join(dir, "ncspv.d", ".hidden.conf"), "confirmations=99\n")
	write(t, filepath.Join(dir, "ncspv.d", "30-c.conf~"), "confirmations=98\n")
	write(t, filepath.Join(dir, "ncspv.d", "40-d.conf.dpkg-old"), "confirmations=97\n")

	cfg, _, _, err := loadConfig([]string{"--configfile", conf}, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Confirmations != 7 || cfg.DebugLevel != "warn" || len(cfg.Servers) != 1 {
		t.Fatalf("files: confirmations %d debuglevel %s servers %v", cfg.Confirmations, cfg.DebugLevel, cfg.Servers)
	}
	cfg, _, _, err = loadConfig([]string{"--configfile", conf, "--confirmations=8"}, env(nil), noCommands)
	if err != nil || cfg.Confirmations != 8 || cfg.DebugLevel != "warn" {
		t.Fatalf("flag must win: %v %+v", err, cfg)
	}
	// Defaults with no file at all.
	cfg, _, _, err = loadConfig(nil, env(map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "none")}), noCommands)
	if err != nil || cfg.Confirmations != 12 || cfg.DebugLevel != "info" {
		t.Fatalf("defaults: %v %+v", err, cfg)
	}
	// The user file from XDG_CONFIG_HOME is read by default.
	xdg := filepath.Join(dir, "xdg")
	write(t, filepath.Join(xdg, "ncspv", "ncspv.conf"), "confirmations=3\n")
	cfg, _, _, err = loadConfig(nil, env(map[string]string{"XDG_CONFIG_HOME": xdg}), noCommands)
	if err != nil || cfg.Confirmations != 3 {
		t.Fatalf("XDG config: %v %+v", err, cfg)
	}
}

// TestConfigErrors: unknown keys and bad values name the file and line.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown key": "confirmations=5\nno-such-option=1\n",
		"bad value":   "\nconfirmations=many\n",
	}
	wantLine := map[string]string{"unknown key": ":2:", "bad value": ":2:"}
	for name, text := range cases {
		conf := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".conf")
		write(t, conf, text)
		_, _, _, err := loadConfig([]string{"--configfile", conf}, env(nil), noCommands)
		if err == nil || !strings.Contains(err.Error(), conf+wantLine[name]) {
			t.Errorf("%s: %v (want %s%s)", name, err, conf, wantLine[name])
		}
	}
	// A bad drop-in is named too.
	conf := filepath.Join(dir, "ok.conf")
	write(t, conf, "confirmations=5\n")
	bad := filepath.Join(dir, "ncspv.d", "50-bad.conf")
	write(t, bad, "follow=maybe\n")
	if _, _, _, err := loadConfig([]string{"--configfile", conf}, env(nil), noCommands); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("bad drop-in: %v", err)
	}
	if _, _, _, err := loadConfig([]string{"--configfile", filepath.Join(dir, "missing.conf")}, env(nil), noCommands); err == nil {
		t.Error("a missing explicit config file was accepted")
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	base := map[string]string{"HOME": home}
	parse := func(args ...string) (*resolved, error) {
		cfg, _, _, err := loadConfig(args, env(base), noCommands)
		if err != nil {
			return nil, err
		}
		return cfg.resolve(env(base))
	}
	r, err := parse()
	if err != nil || r.params.Name != "mainnet" || r.proxy != tor.DefaultProxy || r.rpcListen[0] != "127.0.0.1:8336" ||
		len(r.servers) != 5 || r.netDir != filepath.Join(home, ".local", "share", "ncspv", "mainnet") {
		t.Fatalf("mainnet defaults: %+v %v", r, err)
	}
	if _, err := parse("--proxy=none"); err == nil || !strings.Contains(err.Error(), "--allow-clearnet") {
		t.Fatalf("clearnet on mainnet: %v", err)
	}
	if _, err := parse("--proxy=none", "--allow-clearnet"); err != nil {
		t.Fatal(err)
	}
	// Without --server, regtest has no servers: fine for what reads only
	// the local database (status), refused by what syncs (openNode).
	if r, err := parse("--regtest"); err != nil || len(r.servers) != 0 {
		t.Fatalf("regtest without --server: %+v %v", r, err)
	}
	if r, err := parse("--regtest", "--server=tcp://127.0.0.1:1", "--proxy=none"); err != nil || r.rpcListen[0] != "127.0.0.1:18443" {
		t.Fatalf("regtest: %+v %v", r, err)
	}
	for _, bad := range [][]string{{"--testnet", "--regtest"}, {"--rpcuser=u"}, {"--confirmations=0"}, {"--debuglevel=loud"}, {"--server=http://x:1"}, {"--proxy=9050"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	base["STATE_DIRECTORY"] = "/var/lib/ncspv"
	base["RUNTIME_DIRECTORY"] = "/run/ncspv"
	base["TOR_SOCKS_PORT"] = "9150"
	r, err = parse()
	if err != nil || r.netDir != "/var/lib/ncspv/mainnet" || r.cookie != "/run/ncspv/.cookie" || r.proxy.Address != "127.0.0.1:9150" {
		t.Fatalf("systemd and Tor Browser environment: %+v %v", r, err)
	}
}

// TestSystemConfigDir: the system-wide config comes from /etc/ncspv, or
// from $NCSPV_CONFDIR, with its drop-ins.
func TestSystemConfigDir(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ncspv.conf"), "confirmations=4\n")
	write(t, filepath.Join(dir, "ncspv.d", "10-x.conf"), "confirmations=6\n")
	cfg, _, _, err := loadConfig(nil, env(map[string]string{"NCSPV_CONFDIR": dir}), noCommands)
	if err != nil || cfg.Confirmations != 6 {
		t.Fatalf("NCSPV_CONFDIR: %+v %v", cfg, err)
	}
	if files := defaultConfigFiles(env(nil)); files[0] != filepath.Join(systemConfigDir, "ncspv.conf") {
		t.Fatalf("default files %v", files)
	}
}

// TestSampleConfigKeys: every key of the shipped sample config, once
// uncommented, is accepted where it stands (the sample's
// [Application Options] header made every one fail).
func TestSampleConfigKeys(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "contrib", "ncspv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(sample), "\n")
	tried := 0
	for i, line := range lines {
		key, ok := strings.CutPrefix(line, "; ")
		if !ok || !strings.Contains(key, "=") || strings.Contains(key, " ") {
			continue
		}
		edited := append([]string(nil), lines...)
		edited[i] = key
		conf := filepath.Join(t.TempDir(), "ncspv.conf")
		write(t, conf, strings.Join(edited, "\n"))
		if _, _, _, err := loadConfig([]string{"--configfile", conf}, env(nil), noCommands); err != nil {
			t.Errorf("sample line %d %q uncommented: %v", i+1, key, err)
		}
		tried++
	}
	if tried < 10 {
		t.Fatalf("only %d keys found in the sample", tried)
	}
}

// TestConfigAsCore: a config file reads as Namecoin Core's does: '#'
// comments anywhere on a line, [main], [test] and [regtest] sections for
// one network, and booleans as 1 or 0, on the command line too.
func TestConfigAsCore(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ncspv.conf")
	write(t, conf, "confirmations=5 # five, Core strips this\n[main]\nconfirmations=7\n[regtest]\nconfirmations=9\ndebuglevel=debug\n")
	load := func(args ...string) *config {
		t.Helper()
		cfg, _, _, err := loadConfig(append([]string{"--configfile", conf}, args...), env(nil), noCommands)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return cfg
	}
	if c := load(); c.Confirmations != 7 || c.DebugLevel != "info" {
		t.Errorf("mainnet: confirmations %d, debuglevel %s", c.Confirmations, c.DebugLevel)
	}
	if c := load("--regtest=1"); !c.RegTest || c.Confirmations != 9 || c.DebugLevel != "debug" {
		t.Errorf("--regtest=1: %+v", c)
	}
	if c := load("--testnet=true", "--follow=0"); !c.TestNet || c.Follow || c.Confirmations != 5 {
		t.Errorf("--testnet=true: %+v", c)
	}
	if _, _, _, err := loadConfig([]string{"--configfile", conf, "--follow=maybe"}, env(nil), noCommands); err == nil {
		t.Error("--follow=maybe accepted")
	}
	write(t, conf, "regtest=1\n[regtest]\nconfirmations=3\n")
	if c := load(); !c.RegTest || c.Confirmations != 3 {
		t.Errorf("network from the file's top level: %+v", c)
	}
	write(t, conf, "[wallet]\nx=1\n")
	if _, _, _, err := loadConfig([]string{"--configfile", conf}, env(nil), noCommands); err == nil ||
		!strings.Contains(err.Error(), "ncspv.conf:1: unknown section [wallet]") {
		t.Errorf("unknown section: %v", err)
	}
}

// TestBadValueNamesItsFile: a value that loads but is not valid (a
// drop-in's confirmations=0) is a usage error, exit 2, naming the file
// and line that set it.
func TestBadValueNamesItsFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ncspv.conf"), "regtest=1\n")
	dropIn := filepath.Join(dir, "ncspv.d", "50-local.conf")
	write(t, dropIn, "# local settings\nconfirmations=0\n")
	stderr := captureStderr(t, func() {
		if code := run([]string{"status"}, env(map[string]string{"NCSPV_CONFDIR": dir, "HOME": t.TempDir()})); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
	if !strings.Contains(stderr, dropIn+":2") {
		t.Fatalf("error does not name %s:2: %s", dropIn, stderr)
	}
}

func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	f()
	os.Stderr = old
	w.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// TestManPageSections: the man page has the sections a Debian user looks
// for, and the help names its option group once.
func TestManPageSections(t *testing.T) {
	out := captureStdout(t, func() {
		if code := run([]string{"manpage"}, env(nil)); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	for _, sec := range []string{".SH CONFIGURATION", ".SH FILES", ".SH ENVIRONMENT", ".SH EXIT STATUS", ".SH SEE ALSO", "NCSPV_CONFDIR"} {
		if !strings.Contains(out, sec) {
			t.Errorf("man page lacks %s", sec)
		}
	}
	if n := strings.Count(out, "Application Options"); n > 1 {
		t.Errorf("Application Options %d times", n)
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	f()
	os.Stdout = old
	w.Close()
	return string(<-done)
}

// TestUsageHints: what a Namecoin Core or Electrum-NMC user types by habit
// gets a usage error (exit 2) that says what to type instead.
func TestUsageHints(t *testing.T) {
	for _, c := range []struct {
		args []string
		hint string
	}{
		{[]string{"-conf=/etc/namecoin.conf"}, "--configfile"},
		{[]string{"-regtest"}, "--regtest, not -regtest"},
		{[]string{"name_show", "d/x"}, `did you mean "name-show"`},
	} {
		var code int
		stderr := captureStderr(t, func() { code = run(c.args, env(map[string]string{"HOME": t.TempDir()})) })
		if code != 2 || !strings.Contains(stderr, c.hint) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.hint)
		}
	}
}
