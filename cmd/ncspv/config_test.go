package main

import (
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
	if _, err := parse("--regtest"); err == nil {
		t.Fatal("regtest without --server accepted")
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
