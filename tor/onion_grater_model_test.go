package tor_test

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cretz/bine/control"
	"gopkg.in/yaml.v3"
)

// This file is a model of onion-grater (Tails/Whonix's control-port
// filter) as far as ncspv's profile uses it, written from its documented
// rules: a command passes when a rule's pattern matches its whole argument
// string (Python's re.match(pattern + "$")); PROTOCOLINFO and AUTHENTICATE
// are answered by the filter (no authentication towards the client);
// SETEVENTS passes when every event is listed; `confs` turns into GETCONF
// and SETCONF rules; a response or event line is rewritten by the first
// replacer whose pattern matches it, its groups put into the replacement's
// {} fields, and an event rewritten to nothing is dropped. onion-grater is
// not packaged in Debian, so the profile is tested against this model
// placed in front of a real tor.

const graterProfilePath = "../contrib/onion-grater/40_ncspv.yml"

type graterReplacer struct {
	re          *regexp.Regexp
	replacement string
}

type graterRule struct {
	re       *regexp.Regexp
	response []graterReplacer
}

type graterProfile struct {
	commands map[string][]graterRule
	events   map[string][]graterReplacer
}

// pyMatch compiles a pattern the way onion-grater applies it:
// re.match(pattern + "$", s) anchors at the start and at the end.
func pyMatch(t testing.TB, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile("^(?:" + pattern + "$)")
	if err != nil {
		t.Fatalf("profile pattern %q: %v", pattern, err)
	}
	return re
}

type yamlRule struct {
	Pattern     string `yaml:"pattern"`
	Replacement string `yaml:"replacement"`
	Response    []struct {
		Pattern     string `yaml:"pattern"`
		Replacement string `yaml:"replacement"`
	} `yaml:"response"`
}

// UnmarshalYAML takes onion-grater's shorthand: a bare string is a pattern.
func (r *yamlRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.Pattern = n.Value
		return nil
	}
	type plain yamlRule
	return n.Decode((*plain)(r))
}

type yamlFilter struct {
	Name             string                `yaml:"name"`
	AppArmorProfiles []string              `yaml:"apparmor-profiles"`
	Users            []string              `yaml:"users"`
	Hosts            []string              `yaml:"hosts"`
	Commands         map[string][]yamlRule `yaml:"commands"`
	Confs            map[string][]string   `yaml:"confs"`
	Events           map[string]struct {
		Suppress bool       `yaml:"suppress"`
		Response []yamlRule `yaml:"response"`
	} `yaml:"events"`
}

func caseInsensitive(s string) string {
	var b strings.Builder
	for _, c := range s {
		b.WriteString("[" + strings.ToUpper(string(c)) + strings.ToLower(string(c)) + "]")
	}
	return b.String()
}

func loadGraterProfile(t testing.TB) (graterProfile, yamlFilter) {
	t.Helper()
	raw, err := os.ReadFile(graterProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var filters []yamlFilter
	if err := yaml.Unmarshal(raw, &filters); err != nil {
		t.Fatalf("%s: %v", graterProfilePath, err)
	}
	if len(filters) != 1 {
		t.Fatalf("%s: %d filters, want 1", graterProfilePath, len(filters))
	}
	f := filters[0]
	p := graterProfile{commands: map[string][]graterRule{}, events: map[string][]graterReplacer{}}
	for cmd, rules := range f.Commands {
		for _, r := range rules {
			if r.Replacement != "" {
				t.Fatalf("%s %q: command rewriting is not modelled", cmd, r.Pattern)
			}
			gr := graterRule{re: pyMatch(t, r.Pattern)}
			for _, rr := range r.Response {
				gr.response = append(gr.response, graterReplacer{pyMatch(t, rr.Pattern), rr.Replacement})
			}
			p.commands[strings.ToUpper(cmd)] = append(p.commands[strings.ToUpper(cmd)], gr)
		}
	}
	// confs: GETCONF of any listed key; SETCONF of listed key=value pairs.
	var keys, assigns []string
	for k, vals := range f.Confs {
		keys = append(keys, caseInsensitive(k))
		if len(vals) > 0 {
			assigns = append(assigns, caseInsensitive(k)+"=("+strings.Join(vals, "|")+")")
		}
	}
	if len(keys) > 0 {
		p.commands["GETCONF"] = append(p.commands["GETCONF"], graterRule{re: pyMatch(t, "("+strings.Join(keys, "|")+")")})
	}
	if len(assigns) > 0 {
		p.commands["SETCONF"] = append(p.commands["SETCONF"], graterRule{re: pyMatch(t, "("+strings.Join(assigns, `\s*|\s*`)+")+")})
	}
	for ev, opts := range f.Events {
		if opts.Suppress {
			t.Fatalf("event %s: suppress is not modelled", ev)
		}
		reps := []graterReplacer{}
		for _, rr := range opts.Response {
			reps = append(reps, graterReplacer{pyMatch(t, rr.Pattern), rr.Replacement})
		}
		p.events[strings.ToUpper(ev)] = reps
	}
	return p, f
}

// pyFormat fills a replacement's {} fields with the match groups, as
// Python's str.format does (a group that did not take part prints None).
func pyFormat(t testing.TB, repl string, groups []string, present []bool) string {
	t.Helper()
	var b strings.Builder
	n := 0
	for i := 0; i < len(repl); i++ {
		switch {
		case strings.HasPrefix(repl[i:], "{}"):
			if n >= len(groups) {
				t.Fatalf("replacement %q has more fields than its pattern has groups", repl)
			}
			if present[n] {
				b.WriteString(groups[n])
			} else {
				b.WriteString("None")
			}
			n++
			i++
		case repl[i] == '{' || repl[i] == '}':
			t.Fatalf("replacement %q: only {} fields are modelled", repl)
		default:
			b.WriteByte(repl[i])
		}
	}
	return b.String()
}

// rewrite applies the first matching replacer; a line no replacer matches
// is left as it is.
func rewrite(t testing.TB, reps []graterReplacer, line string) string {
	for _, r := range reps {
		idx := r.re.FindStringSubmatchIndex(line)
		if idx == nil {
			continue
		}
		var groups []string
		var present []bool
		for g := 1; g < len(idx)/2; g++ {
			present = append(present, idx[2*g] >= 0)
			if idx[2*g] >= 0 {
				groups = append(groups, line[idx[2*g]:idx[2*g+1]])
			} else {
				groups = append(groups, "")
			}
		}
		return pyFormat(t, r.replacement, groups, present)
	}
	return line
}

// allowed reports the rule a command line passes by, or nil.
func (p graterProfile) allowed(line string) (cmd string, rule *graterRule, ok bool) {
	cmd, args, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	cmd = strings.ToUpper(cmd)
	args = strings.TrimLeft(args, " \t")
	for i := range p.commands[cmd] {
		if p.commands[cmd][i].re.MatchString(args) {
			return cmd, &p.commands[cmd][i], true
		}
	}
	return cmd, nil, false
}

// eventLine rewrites one async event line; "" means dropped.
func (p graterProfile) eventLine(t testing.TB, line string) string {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return ""
	}
	reps, ok := p.events[fields[1]]
	if !ok {
		return "" // never subscribed through the filter
	}
	return strings.TrimSpace(rewrite(t, reps, line))
}

// graterProxy is the model running as a proxy in front of a real tor
// control port that needs no authentication.
type graterProxy struct {
	Addr string

	t       testing.TB
	prof    graterProfile
	torAddr string

	mu        sync.Mutex
	sent      []string // command lines the client sent
	filtered  []string // command lines the filter refused
	delivered []string // event lines passed to the client
}

func startGraterProxy(t testing.TB, torAddr string) *graterProxy {
	t.Helper()
	prof, _ := loadGraterProfile(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	gp := &graterProxy{Addr: ln.Addr().String(), t: t, prof: prof, torAddr: torAddr}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go gp.serve(c)
		}
	}()
	return gp
}

func (gp *graterProxy) record(list *[]string, line string) {
	gp.mu.Lock()
	*list = append(*list, line)
	gp.mu.Unlock()
}

func (gp *graterProxy) snapshot() (sent, filtered, delivered []string) {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	return append([]string(nil), gp.sent...), append([]string(nil), gp.filtered...), append([]string(nil), gp.delivered...)
}

func (gp *graterProxy) serve(client net.Conn) {
	defer client.Close()
	tc, err := net.Dial("tcp", gp.torAddr)
	if err != nil {
		gp.t.Errorf("onion-grater model: %v", err)
		return
	}
	defer tc.Close()
	// Like onion-grater, authenticate to tor itself (cookie); tor sends
	// nothing unasked before SETEVENTS, so the raw connection is clean
	// after this.
	if err := control.NewConn(textproto.NewConn(tc)).Authenticate(""); err != nil {
		gp.t.Errorf("onion-grater model: authenticate to tor: %v", err)
		return
	}
	var wmu sync.Mutex
	write := func(lines ...string) {
		wmu.Lock()
		defer wmu.Unlock()
		for _, l := range lines {
			fmt.Fprintf(client, "%s\r\n", l)
		}
	}
	// Tor's lines: async events go to the client (rewritten), replies to
	// the command waiting for them.
	replies := make(chan []string, 1)
	go func() {
		defer close(replies)
		r := bufio.NewReader(tc)
		var reply []string
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case inData:
				reply = append(reply, line)
				inData = line != "."
			case strings.HasPrefix(line, "650 "):
				if ev := gp.prof.eventLine(gp.t, line); ev != "" {
					gp.record(&gp.delivered, ev)
					write(ev)
				}
			case strings.HasPrefix(line, "650"):
				gp.t.Errorf("onion-grater model: multi-line event not modelled: %q", line)
			default:
				reply = append(reply, line)
				if len(line) >= 4 && line[3] == '+' {
					inData = true
				}
				if len(line) >= 4 && line[3] == ' ' {
					replies <- reply
					reply = nil
				}
			}
		}
	}()
	ask := func(line string) []string {
		fmt.Fprintf(tc, "%s\r\n", line)
		return <-replies
	}
	cr := bufio.NewReader(client)
	for {
		line, err := cr.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		gp.record(&gp.sent, line)
		cmd, rule, ok := gp.prof.allowed(line)
		switch cmd {
		case "PROTOCOLINFO":
			write("250-PROTOCOLINFO 1", "250-AUTH METHODS=NULL", `250-VERSION Tor="0.4.9"`, "250 OK")
			continue
		case "AUTHENTICATE":
			write("250 OK")
			continue
		case "QUIT":
			write("250 closing connection")
			return
		case "SETEVENTS":
			ok = true
			for _, ev := range strings.Fields(line)[1:] {
				if _, listed := gp.prof.events[strings.ToUpper(ev)]; !listed {
					ok = false
				}
			}
		}
		if !ok {
			gp.record(&gp.filtered, line)
			write("510 Command filtered")
			continue
		}
		rep := ask(line)
		if rule != nil && rule.response != nil {
			for i, l := range rep {
				rep[i] = rewrite(gp.t, rule.response, l)
			}
		}
		write(rep...)
	}
}
