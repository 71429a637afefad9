package tortest

import (
	"context"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cretz/bine/control"
	"github.com/ncspv/ncspv/internal/testvectors"
)

// RealTor is a running Debian tor from ../shared/tor/offline-torrc.example:
// real SOCKS and control ports on loopback, never reaching the network.
type RealTor struct {
	SocksAddr, ControlAddr string
	// ControlSocket is the path of its ControlSocket, as Debian's tor
	// offers one (/run/tor/control).
	ControlSocket string
	Control       *control.Conn
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartRealTor starts tor, or skips when it is not installed (fails
// instead under CI, which must run this test).
func StartRealTor(t testing.TB) *RealTor {
	t.Helper()
	bin, err := exec.LookPath("tor")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tor is not installed, and CI must run the real-Tor tests (.ci/run installs Debian's tor)")
		}
		t.Skip("tor is not installed (apt-get install tor); skipping the real-Tor test")
	}
	tmpl, err := os.ReadFile(testvectors.SharedPath(t, "tor/offline-torrc.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	socks, ctl := freePort(t), freePort(t)
	conf := strings.NewReplacer("DATADIR", data, "SOCKSPORT", strconv.Itoa(socks),
		"CONTROLPORT", strconv.Itoa(ctl)).Replace(string(tmpl))
	// A control socket too, beside the port, as Debian's tor has.
	sock := filepath.Join(data, "control")
	conf += "\nControlSocket " + sock + "\n"
	torrc := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-f", torrc)
	logf, _ := os.Create(filepath.Join(dir, "tor.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tor: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		logf.Close()
	})
	rt := &RealTor{
		SocksAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(socks)),
		ControlAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ctl)),
		ControlSocket: sock,
	}
	var nc net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		nc, err = net.Dial("tcp", rt.ControlAddr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "tor.log"))
			t.Fatalf("tor control port never opened: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rt.Control = control.NewConn(textproto.NewConn(nc))
	t.Cleanup(func() { rt.Control.Close() })
	if err := rt.Control.Authenticate(""); err != nil {
		t.Fatalf("control port authentication (cookie): %v", err)
	}
	return rt
}

// StreamStatus is Tor's GETINFO stream-status: one "ID STATUS CIRCUIT
// TARGET" line per stream (Tor writes a lone stream on the key's line).
func (rt *RealTor) StreamStatus(t testing.TB) string {
	t.Helper()
	resp, err := rt.Control.SendRequest("GETINFO stream-status")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("stream-status=", "", "\r", "").Replace(strings.Join(resp.Data, "\n"))
}

// LeaveStreamsUnattached is Tor's current __LeaveStreamsUnattached value.
func (rt *RealTor) LeaveStreamsUnattached(t testing.TB) string {
	t.Helper()
	kv, err := rt.Control.GetConf("__LeaveStreamsUnattached")
	if err != nil || len(kv) != 1 {
		t.Fatalf("GETCONF __LeaveStreamsUnattached: %+v, %v", kv, err)
	}
	return kv[0].Val
}
