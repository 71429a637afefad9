package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
)

// TestDaemonKilledMidSync kills a daemon process with SIGKILL in the
// middle of its first sync (the server withholds every chunk above the
// first committed batch), starts it again, and checks that the second run
// asks only for headers above what the first one stored, ends at the
// server's tip, and leaves a consistent database.
func TestDaemonKilledMidSync(t *testing.T) {
	const tip, committed = 3000, 2016 // the sync commits every 2016 headers
	srv := nameChainServer(t, 9, tip, 10, "d/kill", "v", electrumxtest.Options{})
	var mu sync.Mutex
	withhold := true
	var asked []int64 // block.headers start heights after the restart
	srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method != "blockchain.block.headers" || len(r.Params) == 0 {
			return nil
		}
		start, _ := strconv.ParseInt(string(r.Params[0]), 10, 64)
		mu.Lock()
		defer mu.Unlock()
		if withhold {
			if start > committed {
				return &electrumxtest.Action{NoReply: true}
			}
			return nil
		}
		asked = append(asked, start)
		return nil
	})

	dir := t.TempDir()
	rpcAddr := freeLoopbackAddr(t)
	rpcAuth := &config{RPCUser: "u", RPCPass: "p"}
	start := func() *exec.Cmd {
		args := []string{"daemon", "--regtest", "--datadir", dir, "--server", srv.Address().String(), "--proxy=none",
			"--rpclisten=" + rpcAddr, "--rpcuser=u", "--rpcpass=p", "--debuglevel=warn"}
		cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonProcessHelper$")
		cmd.Env = append(os.Environ(), "NCSPV_DAEMON_ARGS="+strings.Join(args, "\n"), "XDG_CONFIG_HOME="+dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	waitHeight := func(cmd *exec.Cmd, want int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			raw, err := callRPC(context.Background(), rpcAddr, rpcAuth, nil, "getblockcount", nil)
			if h, perr := strconv.ParseInt(string(raw), 10, 64); err == nil && perr == nil && h >= want {
				return
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("daemon never reached height %d", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := start()
	waitHeight(first, committed)
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	first.Wait()

	mu.Lock()
	withhold = false
	mu.Unlock()
	second := start()
	waitHeight(second, tip)
	if _, err := callRPC(context.Background(), rpcAddr, rpcAuth, nil, "stop", nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("restarted daemon: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	// Chunk requests are pipelined, so they reach the server in any order.
	if len(asked) == 0 || slices.Min(asked) != committed+1 {
		t.Fatalf("after the restart the daemon asked for chunks from %v; want none at or below %d, and %d first",
			asked, committed, committed+1)
	}
	s, err := headers.OpenStore(filepath.Join(dir, "regtest", "headers.db"), &headers.RegTestParams,
		headers.RegTestParams.GenesisAnchor(), headers.StoreOptions{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckIntegrity(); err != nil {
		t.Fatal(err)
	}
	if s.Tip().Height != tip {
		t.Fatalf("stored tip %d, want %d", s.Tip().Height, tip)
	}
}

// TestDaemonProcessHelper is the daemon process of TestDaemonKilledMidSync.
func TestDaemonProcessHelper(t *testing.T) {
	args := os.Getenv("NCSPV_DAEMON_ARGS")
	if args == "" {
		t.Skip("helper process for TestDaemonKilledMidSync")
	}
	os.Exit(run(strings.Split(args, "\n"), os.Getenv))
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
