package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/rpcclient"
	"github.com/namecoin/ncrpcclient"
)

// The Whonix layout: Gateway 10.152.152.10, Workstation 10.152.152.11, on
// a veth pair between two network namespaces this test creates.
const (
	gwAddr = "10.152.152.10"
	wsAddr = "10.152.152.11"
)

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestWhonixSplit runs the daemon in a "workstation" namespace (with its
// fake ElectrumX server there too) and a client in a "gateway" namespace
// that calls name_show over the veth address with user/password, as
// ncprop279 on a Whonix Gateway would; without or with wrong credentials
// the RPC refuses. It skips where namespaces are not permitted, but not
// under CI.
func TestWhonixSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and creates network namespaces")
	}
	skip := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run the network-namespace test: %s", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("iproute2's ip is not installed")
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	sfx := hex.EncodeToString(rnd[:])
	gw, ws := "ncspv-gw-"+sfx, "ncspv-ws-"+sfx
	if out, err := exec.Command("ip", "netns", "add", gw).CombinedOutput(); err != nil {
		skip(fmt.Sprintf("cannot create a network namespace: %v %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", gw).Run() })
	ipCmd(t, "netns", "add", ws)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ws).Run() })
	vg, vw := "vg"+sfx, "vw"+sfx
	ipCmd(t, "link", "add", vg, "type", "veth", "peer", "name", vw)
	ipCmd(t, "link", "set", vg, "netns", gw)
	ipCmd(t, "link", "set", vw, "netns", ws)
	ipCmd(t, "-n", gw, "addr", "add", gwAddr+"/24", "dev", vg)
	ipCmd(t, "-n", ws, "addr", "add", wsAddr+"/24", "dev", vw)
	for _, ns := range []struct{ name, dev string }{{gw, vg}, {ws, vw}} {
		ipCmd(t, "-n", ns.name, "link", "set", "lo", "up")
		ipCmd(t, "-n", ns.name, "link", "set", ns.dev, "up")
	}

	dir := t.TempDir()
	bin := ncspvBinary(t)

	// The fake ElectrumX servers, inside the workstation.
	fake := exec.Command("ip", "netns", "exec", ws, bin, "bench-server", "--blocks", "300")
	fakeIn, _ := fake.StdinPipe()
	fakeOut, _ := fake.StdoutPipe()
	fake.Stderr = os.Stderr
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fakeIn.Close(); fake.Wait() })
	line, err := bufio.NewReader(fakeOut).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		t.Fatalf("fake server: %q %v", line, err)
	}

	// The daemon, inside the workstation, listening on its internal address.
	rpcAddr := wsAddr + ":18443"
	daemon := exec.Command("ip", "netns", "exec", ws, bin, "--regtest", "--datadir", filepath.Join(dir, "data"),
		"--server", f[2], "--proxy=none", "--rpclisten", rpcAddr, "--rpcuser", "ncprop279", "--rpcpass", "secret",
		"--confirmations=1", "--debuglevel=error")
	daemon.Stderr = os.Stderr
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() { daemon.Process.Kill() })

	// The client, inside the gateway.
	client := exec.Command("ip", "netns", "exec", gw, os.Args[0], "-test.run=^TestWhonixClientHelper$", "-test.v")
	client.Env = append(os.Environ(), "NCSPV_NETNS_RPC="+rpcAddr)
	out, err := client.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RESOLVED d/bench") || !strings.Contains(string(out), "REFUSED 401 401") {
		t.Fatalf("gateway client: %v\n%s", err, out)
	}
	t.Logf("gateway client:\n%s", out)

	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}

// TestWhonixClientHelper is the gateway side of TestWhonixSplit: it runs
// only inside the gateway namespace.
func TestWhonixClientHelper(t *testing.T) {
	addr := os.Getenv("NCSPV_NETNS_RPC")
	if addr == "" {
		t.Skip("helper process for TestWhonixSplit")
	}
	c, err := ncrpcclient.New(&rpcclient.ConnConfig{Host: addr, User: "ncprop279", Pass: "secret",
		HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	// The daemon in the other namespace may not be listening yet.
	refused := func(err error) bool { return strings.Contains(err.Error(), "connection refused") }
	r := nameShowOnceSynced(t, c, "d/bench", "stemns-1", 20*time.Second, refused)
	fmt.Printf("RESOLVED %s %s\n", r.Name, r.Value)
	body := `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/bench"]}`
	codes := []int{}
	for _, auth := range [][2]string{{"", ""}, {"ncprop279", "wrong"}} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
		if auth[0] != "" {
			req.SetBasicAuth(auth[0], auth[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	fmt.Printf("REFUSED %d %d\n", codes[0], codes[1])
}
