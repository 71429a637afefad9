package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/namecoin/ncbtcjson"
	"github.com/namecoin/ncrpcclient"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// TestDaemon runs the daemon against a fake ElectrumX server (regtest,
// proxy none), resolves a name through ncprop279's client library with the
// cookie, and stops it with the RPC stop: the cookie is removed and the
// database is released.
func TestDaemon(t *testing.T) {
	srv := nameChainServer(t, 5, 40, 30, "d/daemon", `{"ip":"9.9.9.9"}`, electrumxtest.Options{Pad: true})

	dir := t.TempDir()
	// A fixed address, so that the CLI below finds the daemon by its
	// configuration.
	args := []string{"--regtest", "--datadir", dir, "--server", srv.Address().String(),
		"--proxy=none", "--rpclisten=" + freeLoopbackAddr(t), "--confirmations=3", "--debuglevel=error"}
	cfg, _, _, err := loadConfig(args, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	// A systemd notify socket, to see READY=1 once the RPC listens.
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(context.Background(), cfg, env(map[string]string{"NOTIFY_SOCKET": notifyPath}), ready)
	}()
	var addrs []string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	buf := make([]byte, 64)
	notify.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := notify.ReadFromUnix(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd notification: %q %v", buf[:n], err)
	}
	cookie := filepath.Join(dir, "regtest", ".cookie")
	client, err := ncrpcclient.New(&rpcclient.ConnConfig{Host: addrs[0], CookiePath: cookie, HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Shutdown()
	r := nameShowOnceSynced(t, client, "d/daemon", "tab", 10*time.Second, nil)
	if r.Value != `{"ip":"9.9.9.9"}` || r.Height != 30 {
		t.Fatalf("name_show %+v", r)
	}
	// The daemon holds the database: name-show and status on the command
	// line ask it instead.
	for _, sub := range [][]string{{"name-show", "d/daemon"}, {"status"}} {
		if code := run(append(append([]string{}, args...), sub...), env(nil)); code != 0 {
			t.Errorf("ncspv %v while the daemon runs: exit %d", sub, code)
		}
	}
	if _, err := client.RawRequest("stop", nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if _, err := os.Stat(cookie); !os.IsNotExist(err) {
		t.Fatal("cookie left behind")
	}
	s, err := headers.OpenStore(filepath.Join(dir, "regtest", "headers.db"), &headers.RegTestParams,
		headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("database not released: %v", err)
	}
	defer s.Close()
	if s.Tip().Height != 40 {
		t.Fatalf("stored tip %d", s.Tip().Height)
	}
}

// TestSubcommands runs sync, name-show and status the way a user types
// them, and checks the exit statuses of help, version and bad input.
func TestSubcommands(t *testing.T) {
	srv := nameChainServer(t, 6, 20, 10, "d/cli", "v", electrumxtest.Options{})
	dir := t.TempDir()
	common := []string{"--regtest", "--datadir", dir, "--server", srv.Address().String(), "--proxy=none", "--debuglevel=error"}
	args := func(extra ...string) []string { return append(append([]string{}, common...), extra...) }
	e := env(map[string]string{"HOME": dir})
	for _, c := range []struct {
		args []string
		want int
	}{
		{args("sync"), 0},
		{args("name-show", "--confirmations=1", "d/cli"), 0},
		{args("name-show", "d/none"), 1},
		{args("name-show", "--name-encoding=hex", "zz"), 1},
		{args("status"), 0},
		{[]string{"--help"}, 0},
		{[]string{"name-show", "--help"}, 0},
		{[]string{"-V"}, 0},
		{[]string{"--no-such-flag"}, 2},
		{args("name-show"), 2},
		{args("nameshow", "d/cli"), 2}, // a typo must not start the daemon
		{args("status", "extra"), 2},
		{args("name-show", "d/cli", "extra"), 2},
	} {
		if got := run(c.args, e); got != c.want {
			t.Errorf("ncspv %v: exit %d, want %d", c.args[len(common)-min(len(common), len(c.args)):], got, c.want)
		}
	}
}

// TestProp279Command drives "ncspv prop279" through a running daemon, as
// StemNS drives ncprop279: named with --rpcconnect, and found by its
// --rpclisten when it holds the database.
func TestProp279Command(t *testing.T) {
	srv := nameChainServer(t, 8, 20, 10, "d/example", `{"ip":"192.0.2.5","map":{"_tor":{"txt":"exampleonionaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion"}}}`, electrumxtest.Options{})
	dir := t.TempDir()
	args := []string{"--regtest", "--datadir", dir, "--server", srv.Address().String(), "--proxy=none",
		"--rpclisten=" + freeLoopbackAddr(t), "--rpcuser=u", "--rpcpass=p", "--confirmations=1", "--debuglevel=error"}
	cfg, _, _, err := loadConfig(args, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- runDaemon(ctx, cfg, env(nil), ready) }()
	addr := (<-ready)[0]
	defer func() { cancel(); <-done }()
	// Wait for the first sync.
	for i := 0; i < 100; i++ {
		if _, err := callRPC(context.Background(), addr, cfg, nil, "name_show", []any{"d/example"}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, extra := range [][]string{{"--rpcconnect", addr}, nil} {
		in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
		os.WriteFile(in, []byte("RESOLVE 1 example.bit s1\nRESOLVE 2 example.bit.onion s2\nRESOLVE 3 nothing.bit s1\nRESOLVE 4 example.com s1\n"), 0o600)
		stdin, _ := os.Open(in)
		stdout, _ := os.Create(out)
		oldIn, oldOut := os.Stdin, os.Stdout
		os.Stdin, os.Stdout = stdin, stdout
		cmd := append(append(append([]string{}, args...), "prop279", "--conf=/etc/ncprop279.conf"), extra...)
		code := run(cmd, env(nil))
		os.Stdin, os.Stdout = oldIn, oldOut
		stdin.Close()
		stdout.Close()
		if code != 0 {
			t.Fatalf("prop279 %v: exit %d", extra, code)
		}
		got, _ := os.ReadFile(out)
		for _, want := range []string{"INIT 1 0", "RESOLVED 1 0 exampleonion", "RESOLVED 2 0 exampleonion",
			`RESOLVED 3 3 "nothing.bit is not registered"`, `RESOLVED 4 2 "example.com is not a Namecoin domain"`} {
			if !strings.Contains(string(got), want) {
				t.Fatalf("prop279 %v: output lacks %q:\n%s", extra, want, got)
			}
		}
	}
}

// nameChainServer serves, from a fake ElectrumX, a regtest chain of tip
// blocks (generator seed seed) in which name is registered with value at
// nameHeight.
func nameChainServer(t *testing.T, seed uint64, tip, nameHeight int, name, value string, o electrumxtest.Options) *electrumxtest.Server {
	t.Helper()
	g := chaingen.New(&headers.RegTestParams, seed)
	for h := 1; h <= tip; h++ {
		var txs [][]byte
		if h == nameHeight {
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte(name), []byte(value), [20]byte{4}, 0, uint64(h)))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	srv, err := electrumxtest.NewServer(b, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// nameShowOnceSynced calls name_show through ncprop279's client until the
// daemon has finished its first sync (-10 until then) and returns the
// answer. Any other error fails the test, unless alsoRetry accepts it, as
// does running out of wait.
func nameShowOnceSynced(t *testing.T, c *ncrpcclient.Client, name, stream string, wait time.Duration, alsoRetry func(error) bool) *ncbtcjson.NameShowResult {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r, err := c.NameShow(name, &ncbtcjson.NameShowOptions{StreamID: stream})
		if err == nil {
			return r
		}
		var rerr *btcjson.RPCError
		syncing := errors.As(err, &rerr) && rerr.Code == -10
		if time.Now().After(deadline) || !(syncing || alsoRetry != nil && alsoRetry(err)) {
			t.Fatalf("name_show %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDamagedDatabase: status and sync on a damaged header database fail
// and tell the user it can be deleted; other errors pass unchanged.
func TestDamagedDatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "regtest"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "regtest", "headers.db"), []byte(strings.Repeat("garbage ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"status", "sync"} {
		if code := run([]string{"--regtest", "--datadir", dir, "--server", "tcp://127.0.0.1:1", "--proxy=none", "--debuglevel=error", sub}, env(nil)); code != 1 {
			t.Errorf("%s on a damaged database: exit %d", sub, code)
		}
	}
	err := storeAdvice(fmt.Errorf("%w: h.db: invalid database", headers.ErrCorrupt))
	if !errors.Is(err, headers.ErrCorrupt) || !strings.Contains(err.Error(), "delete it to start over") {
		t.Errorf("advice: %v", err)
	}
	if other := errors.New("permission denied"); storeAdvice(other) != other {
		t.Error("advice added to an unrelated error")
	}
}

// TestRPCPortTaken: a daemon whose RPC address is taken (Namecoin Core
// uses the same port) fails at once and says what may hold it.
func TestRPCPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg, _, _, err := loadConfig([]string{"--regtest", "--datadir", dir, "--server", "tcp://127.0.0.1:1",
		"--proxy=none", "--rpclisten=" + ln.Addr().String(), "--debuglevel=error"}, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	err = runDaemon(context.Background(), cfg, env(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "Namecoin Core or another ncspv") {
		t.Fatalf("daemon on a taken port: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "regtest", ".cookie")); !os.IsNotExist(err) {
		t.Errorf("cookie left behind: %v", err)
	}
}

// TestCLIFindsSystemDaemon: with the daemon running as its unit runs it
// (its own state directory, the cookie in its runtime directory), the
// command-line tools of a user with a data directory of their own ask it:
// status shows the daemon's chain, name-show its answer, and no database
// or engine of the user's is started.
func TestCLIFindsSystemDaemon(t *testing.T) {
	srv := nameChainServer(t, 9, 40, 30, "d/daemon", `{"ip":"9.9.9.9"}`, electrumxtest.Options{Pad: true})
	state, runtime, userDir := t.TempDir(), t.TempDir(), t.TempDir()
	addr := freeLoopbackAddr(t)
	cfg, _, _, err := loadConfig([]string{"--regtest", "--server", srv.Address().String(), "--proxy=none",
		"--rpclisten=" + addr, "--confirmations=3", "--debuglevel=error"}, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- runDaemon(ctx, cfg, env(map[string]string{"STATE_DIRECTORY": state, "RUNTIME_DIRECTORY": runtime}), ready)
	}()
	defer func() { cancel(); <-done }()
	<-ready
	cookie := filepath.Join(runtime, ".cookie")
	client, err := ncrpcclient.New(&rpcclient.ConnConfig{Host: addr, CookiePath: cookie, HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Shutdown()
	nameShowOnceSynced(t, client, "d/daemon", "", 10*time.Second, nil)

	old := systemCookie
	systemCookie = cookie // where the unit's daemon writes it (/run/ncspv/.cookie)
	defer func() { systemCookie = old }()
	user := []string{"--regtest", "--datadir", userDir, "--rpclisten=" + addr}
	out := captureStdout(t, func() {
		if code := run(append(user, "status"), env(nil)); code != 0 {
			t.Errorf("status: exit %d", code)
		}
	})
	if !strings.Contains(out, `"daemon": "`+addr+`"`) || !strings.Contains(out, `"blocks": 40`) {
		t.Fatalf("status did not ask the daemon:\n%s", out)
	}
	out = captureStdout(t, func() {
		if code := run(append(user, "name-show", "d/daemon"), env(nil)); code != 0 {
			t.Errorf("name-show: exit %d", code)
		}
	})
	if !strings.Contains(out, `9.9.9.9`) {
		t.Fatalf("name-show:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(userDir, "regtest", "headers.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the user's own database was created: %v", err)
	}
}
