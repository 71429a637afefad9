package tor_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

// TestOnionGraterProfileCommands: the profile lets through the commands
// ncspv sends and nothing that could choose circuits, aim a stream at a
// port, change other settings or read other state.
func TestOnionGraterProfileCommands(t *testing.T) {
	prof, f := loadGraterProfile(t)
	if len(f.AppArmorProfiles) == 0 || len(f.Users) == 0 || len(f.Hosts) == 0 {
		t.Fatalf("profile must name its local and remote clients: %+v", f)
	}
	for _, q := range append(f.AppArmorProfiles, append(f.Users, f.Hosts...)...) {
		if q == "*" {
			t.Fatal("profile matches every client")
		}
	}
	allowed := []string{
		"GETCONF __LeaveStreamsUnattached",
		"SETCONF __LeaveStreamsUnattached=1",
		"SETCONF __LeaveStreamsUnattached=0",
		"GETINFO stream-status",
		"ATTACHSTREAM 15 0",
		"REDIRECTSTREAM 15 " + resolverOnion,
		"REDIRECTSTREAM 15 192.0.2.1",
		"REDIRECTSTREAM 15 2001:db8::1",
		"REDIRECTSTREAM 15 www.example.org",
		"CLOSESTREAM 15 2",
	}
	for _, line := range allowed {
		if _, _, ok := prof.allowed(line); !ok {
			t.Errorf("profile refuses %q, which ncspv sends", line)
		}
	}
	refused := []string{
		"ATTACHSTREAM 15 7",                  // a circuit of ncspv's choosing
		"ATTACHSTREAM 15 0 HOP=1",            // an exit of ncspv's choosing
		"REDIRECTSTREAM 15 evil.example 443", // another port
		"REDIRECTSTREAM 15",
		"REDIRECTSTREAM x evil.example",
		"CLOSESTREAM 15 1",
		"CLOSESTREAM 15 2 extra",
		"SETCONF __LeaveStreamsUnattached=2",
		"SETCONF __LeaveStreamsUnattached=1 ExitNodes=abc",
		"SETCONF ExitNodes=abc",
		"SETCONF SocksPort=0",
		"GETCONF ControlPort",
		"GETCONF __LeaveStreamsUnattached HashedControlPassword",
		"GETINFO address",
		"GETINFO circuit-status",
		"GETINFO stream-status circuit-status",
		"SIGNAL NEWNYM",
		"MAPADDRESS example.bit=evil.example",
		"ADD_ONION NEW:BEST Port=80",
		"EXTENDCIRCUIT 0",
		"RESOLVE example.bit",
		"SAVECONF",
	}
	for _, line := range refused {
		if _, _, ok := prof.allowed(line); ok {
			t.Errorf("profile allows %q", line)
		}
	}
	if _, ok := prof.events["STREAM"]; !ok {
		t.Error("profile does not allow STREAM events")
	}
	for ev := range prof.events {
		if ev != "STREAM" {
			t.Errorf("profile allows %s events, which ncspv does not need", ev)
		}
	}
}

const aliceCreds = ` SOURCE_ADDR=127.0.0.1:40000 PURPOSE=USER SOCKS_USERNAME="alice" SOCKS_PASSWORD="pw" CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=0 SESSION_GROUP=-6 ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,SESSION_GROUP`

// TestOnionGraterProfileRedaction: ncspv sees .bit streams whole and of
// every other stream only its ID and status, and still parses both.
func TestOnionGraterProfileRedaction(t *testing.T) {
	prof, _ := loadGraterProfile(t)
	const redacted = "redacted.invalid:0"
	events := []struct {
		in   string
		kept bool // passed unchanged; else redacted to ID, status, circuit
	}{
		{"650 STREAM 15 NEW 0 example.bit:80" + aliceCreds, true},
		{"650 STREAM 15 CONTROLLER_WAIT 0 example.bit:80" + aliceCreds, true},
		{"650 STREAM 15 CONTROLLER_WAIT 0 WWW.EXAMPLE.BIT:443" + aliceCreds, true},
		{"650 STREAM 15 CONTROLLER_WAIT 0 sub.example.bit.onion:443" + aliceCreds, true},
		{"650 STREAM 15 CONTROLLER_WAIT 0 example.bit.:80" + aliceCreds, true},
		{"650 STREAM 15 NEWRESOLVE 0 example.bit:0" + aliceCreds, true},
		{"650 STREAM 15 FAILED 0 nonexistent.bit:80 REASON=RESOLVEFAILED", true},
		{"650 STREAM 15 CLOSED 0 example.bit:80", true},
		{"650 STREAM 16 CONTROLLER_WAIT 0 www.example.com:443" + aliceCreds, false},
		{"650 STREAM 16 NEW 0 www.example.com:443" + aliceCreds, false},
		{"650 STREAM 16 NEWRESOLVE 0 www.example.com:0" + aliceCreds, false},
		{"650 STREAM 16 SUCCEEDED 7 example.bitcoin.com:443", false},
		{"650 STREAM 16 SUCCEEDED 7 example.bit.evil.example:443", false},
		{"650 STREAM 16 CONTROLLER_WAIT 0 www.example.com:443 SOCKS_USERNAME=\"x.bit:80\"", false},
		{"650 STREAM 16 CONTROLLER_WAIT 0 [2001:db8::1]:443" + aliceCreds, false},
		{"650 STREAM 15 SENTCONNECT 3 " + resolverOnion + ":80", false}, // after the redirect
		{"650 STREAM 16 DETACHED 7 www.example.com:443 REASON=TIMEOUT", false},
	}
	for _, c := range events {
		out := prof.eventLine(t, c.in)
		fields := strings.Fields(c.in)
		want := c.in
		if !c.kept {
			want = strings.Join(fields[:5], " ") + " " + redacted
		}
		if out != want {
			t.Errorf("event %q\n  reached ncspv as %q\n  want            %q", c.in, out, want)
			continue
		}
		ev, err := tor.ParseStreamEvent(strings.TrimPrefix(out, "650 STREAM "))
		if err != nil {
			t.Errorf("ncspv cannot parse %q: %v", out, err)
			continue
		}
		if ev.ID != fields[2] || ev.Status != fields[3] || tor.IsBitTarget(ev.Host) != c.kept {
			t.Errorf("%q parsed as %+v", out, ev)
		}
	}
	if out := prof.eventLine(t, "650 STREAM garbage"); out != "" {
		t.Errorf("a malformed STREAM event reached ncspv as %q", out)
	}

	rule := func(line string) *graterRule {
		_, r, ok := prof.allowed(line)
		if !ok || r == nil {
			t.Fatalf("profile refuses %q", line)
		}
		return r
	}
	status := rule("GETINFO stream-status").response
	for in, want := range map[string]string{
		"250-stream-status=12 NEW 0 www.example.com:443": "250-stream-status=12 NEW 0 " + redacted,
		"250-stream-status=12 NEW 0 example.bit:80":      "250-stream-status=12 NEW 0 example.bit:80",
		"250-stream-status=":                             "250-stream-status=",
		"250+stream-status=":                             "250+stream-status=",
		"12 NEW 0 example.bit:80":                        "12 NEW 0 example.bit:80",
		"13 SUCCEEDED 5 www.torproject.org:443":          "13 SUCCEEDED 5 " + redacted,
		"650 NEW 0 www.torproject.org:443":               "650 NEW 0 " + redacted, // stream 650, not an event
		".":                                              ".",
		"250 OK":                                         "250 OK",
	} {
		if got := rewrite(t, status, in); got != want {
			t.Errorf("stream-status line %q reached ncspv as %q, want %q", in, got, want)
		}
	}
}

// TestRealTorControlResolverThroughOnionGrater runs the real-Tor scenario
// with the onion-grater model and ncspv's profile between ncspv and tor:
// nothing ncspv sends is filtered, the .bit stream is still redirected and
// the clearnet one attached, and ncspv never learns the clearnet target or
// its SOCKS credentials.
func TestRealTorControlResolverThroughOnionGrater(t *testing.T) {
	rt := tortest.StartRealTor(t)
	gp := startGraterProxy(t, rt.ControlAddr)
	runResolverScenario(t, rt, gp.Addr)

	sent, filtered, delivered := gp.snapshot()
	if len(filtered) > 0 {
		t.Errorf("onion-grater filtered commands ncspv sent: %q", filtered)
	}
	for _, want := range []string{"SETEVENTS STREAM", "SETCONF __LeaveStreamsUnattached=1", "ATTACHSTREAM", "REDIRECTSTREAM", "CLOSESTREAM"} {
		if !slices.ContainsFunc(sent, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("ncspv never sent %s through the filter; sent %q", want, sent)
		}
	}
	sawBit, sawRedacted := false, false
	for _, ev := range delivered {
		if strings.Contains(ev, "www.example.com") || strings.Contains(ev, `"bob"`) {
			t.Errorf("ncspv saw the clearnet stream: %q", ev)
		}
		sawBit = sawBit || strings.Contains(ev, `example.bit:80`) && strings.Contains(ev, `SOCKS_USERNAME="alice"`)
		sawRedacted = sawRedacted || strings.Contains(ev, "redacted.invalid:0")
	}
	if !sawBit || !sawRedacted {
		t.Errorf("events reaching ncspv: .bit with credentials %v, redacted %v: %q", sawBit, sawRedacted, delivered)
	}
}
