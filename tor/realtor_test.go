package tor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cretz/bine/control"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

// streamAttr reads KEY=value or KEY="value" from a raw STREAM event.
func streamAttr(raw, key string) string {
	for _, f := range strings.Fields(raw) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// TestRealTorStreamIsolation drives Debian's tor: Tor's own STREAM events
// must show one SOCKS username per stream ID, the same one for a repeated
// ID, another for sync, and the target host name unresolved.
func TestRealTorStreamIsolation(t *testing.T) {
	rt := tortest.StartRealTor(t)
	events := make(chan control.Event, 100)
	if err := rt.Control.AddEventListener(events, control.EventCodeStream); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go rt.Control.HandleEvents(ctx)

	p, err := tor.ParseProxy(rt.SocksAddr)
	if err != nil {
		t.Fatal(err)
	}
	router := tor.NewRouter(p)
	pool := electrumx.NewPool(electrumx.Config{Pins: &electrumx.PinStore{}})
	defer pool.Close()
	onion, _ := electrumx.ParseServer("ssl://" + fakeOnion + ":50002")
	clearnet, _ := electrumx.ParseServer("ssl://nmc2.bitcoins.sk:57002")

	type attempt struct {
		name   string
		group  tor.Group
		server electrumx.Server
	}
	attempts := []attempt{
		{"alpha", router.ForStream("alpha"), onion},
		{"beta", router.ForStream("beta"), onion},
		{"alpha again", router.ForStream("alpha"), onion},
		{"sync", router.ForSync(), onion},
		{"clearnet host", router.ForStream("gamma"), clearnet},
	}
	// Offline Tor never builds a circuit, so each connection waits until
	// our deadline; the stream is created (and reported) at CONNECT.
	for _, a := range attempts {
		dctx, dcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		_, err := pool.Get(dctx, a.server, a.group.Key, electrumx.DialFunc(a.group.Dial))
		dcancel()
		if err == nil {
			t.Fatalf("%s: an offline Tor connected", a.name)
		}
	}

	users := map[string]string{} // target -> SOCKS username, in order
	var seen []string
	for len(seen) < len(attempts) {
		select {
		case ev := <-events:
			se, ok := ev.(*control.StreamEvent)
			if !ok || se.Status != "NEW" || se.Purpose != "USER" {
				continue
			}
			user := streamAttr(se.Raw, "SOCKS_USERNAME")
			target := fmt.Sprintf("%s:%d", se.TargetAddress, se.TargetPort)
			t.Logf("tor STREAM NEW %s SOCKS_USERNAME=%s", target, user)
			seen = append(seen, user)
			users[target] = user
			want := attempts[len(seen)-1].server.Addr()
			if target != want {
				t.Fatalf("stream %d target %s, want %s unresolved", len(seen), target, want)
			}
		case <-ctx.Done():
			t.Fatalf("saw %d of %d streams", len(seen), len(attempts))
		}
	}
	alpha, beta, alpha2, sync, gamma := seen[0], seen[1], seen[2], seen[3], seen[4]
	if alpha == "" || alpha != alpha2 {
		t.Fatalf("equal stream IDs must use the same SOCKS username: %q %q", alpha, alpha2)
	}
	distinct := map[string]bool{alpha: true, beta: true, sync: true, gamma: true}
	if len(distinct) != 4 {
		t.Fatalf("stream IDs alpha, beta, gamma and sync share usernames: %v", seen)
	}
	if alpha != router.Isolator.ForStream("alpha").User {
		t.Fatal("Tor saw another username than the isolator derived")
	}
}
