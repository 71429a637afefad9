package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/cretz/bine/control"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

const torControlOnion = "dhflg7a7etr77hwt4eerwoovhg7b5bivt2jem4366dt4psgnl5diyiyd.onion"

// TestDaemonTorControl runs the daemon with --torcontrol against Debian's
// tor, its ElectrumX server (a fake whose chain holds d/example) reached
// through a recording fake SOCKS proxy: a .bit stream is redirected to the
// chain's onion and attached, a missing name's stream is closed, and the
// two lookups reach the ElectrumX side over different SOCKS credentials.
func TestDaemonTorControl(t *testing.T) {
	rt := tortest.StartRealTor(t)
	srv := nameChainServer(t, 8, 20, 10, "d/example", `{"map":{"_tor":{"txt":"`+torControlOnion+`"}}}`, electrumxtest.Options{})
	proxy, err := tortest.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Route("electrumx.test:50001", srv.Address().Addr())

	args := []string{"--regtest", "--datadir", t.TempDir(), "--server", "tcp://electrumx.test:50001",
		"--proxy", proxy.Addr(), "--rpclisten=127.0.0.1:0", "--rpcuser=u", "--rpcpass=p",
		"--confirmations=1", "--debuglevel=error", "--torcontrol", rt.ControlAddr}
	cfg, _, _, err := loadConfig(args, env(nil), noCommands)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	dctx, dcancel := context.WithCancel(ctx)
	go func() { done <- runDaemon(dctx, cfg, env(nil), ready) }()
	addr := (<-ready)[0]
	for {
		if _, err := callRPC(ctx, addr, cfg, nil, "name_show", []any{"d/example"}); err == nil {
			break
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the daemon never answered name_show for d/example")
		}
	}
	for rt.LeaveStreamsUnattached(t) != "1" {
		time.Sleep(20 * time.Millisecond)
	}
	usersBefore := map[string]bool{}
	for _, r := range proxy.Records() {
		usersBefore[r.User] = true
	}

	events := make(chan control.Event, 1000)
	if err := rt.Control.AddEventListener(events, control.EventCodeStream); err != nil {
		t.Fatal(err)
	}
	go rt.Control.HandleEvents(ctx)
	torProxy, err := tor.ParseProxy(rt.SocksAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ target, user string }{{"example.bit:80", "alice"}, {"nonexistent.bit:80", "carol"}} {
		go func() {
			c, err := torProxy.Dialer(tor.Credentials{User: s.user, Password: "pw"})(ctx, "tcp", s.target)
			if err == nil {
				c.Close()
			}
		}()
	}

	onionAttached := regexp.MustCompile(`(?m)^\d+ \w+ 0 ` + regexp.QuoteMeta(torControlOnion) + `:80$`)
	redirected, closed := false, false
	for !redirected || !closed {
		select {
		case ev := <-events:
			se := ev.(*control.StreamEvent)
			t.Logf("EV %s", se.Raw)
			if se.TargetAddress == "nonexistent.bit" && se.Status == "FAILED" {
				if se.Reason != "RESOLVEFAILED" {
					t.Fatalf("missing name's stream: %s", se.Raw)
				}
				closed = true
			}
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("redirected %v, closed %v", redirected, closed)
		}
		if !redirected {
			redirected = onionAttached.MatchString(rt.StreamStatus(t))
		}
	}
	newUsers := map[string]bool{}
	for _, r := range proxy.Records() {
		if !usersBefore[r.User] {
			newUsers[r.User] = true
		}
	}
	if len(newUsers) < 2 {
		t.Fatalf("the two streams' lookups reached ElectrumX over %d new SOCKS credentials, want distinct ones", len(newUsers))
	}

	dcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := rt.LeaveStreamsUnattached(t); v != "0" {
		t.Fatalf("after the daemon stopped __LeaveStreamsUnattached = %q, want 0", v)
	}
}
