package prop279

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const onionA = "dhflg7a7etr77hwt4eerwoovhg7b5bivt2jem4366dt4psgnl5diyiyd.onion"
const onionB = "7fa6xlti5joarlmkuhjaifa47ukgcwz6tfndgax45ocyn4rixm632jid.onion"

// values is a small Namecoin: name -> value ("" means the lookup fails
// with a server error).
type values map[string]string

func (v values) lookup(_ context.Context, name, _ string) ([]byte, error) {
	val, ok := v[name]
	if !ok {
		return nil, ErrNotFound
	}
	if val == "" {
		return nil, errors.New("backend down")
	}
	return []byte(val), nil
}

// TestMapping checks value -> answer cases against what ncprop279 answers
// (the examples traced through ncdns in the reference notes, and ncdns's
// rules where they are silent).
func TestMapping(t *testing.T) {
	e1 := `{"ip":"107.152.38.155","map":{"*":{"tls":[[2,1,0,"MDkw"]]},"sub1":{"map":{"sub2":{"map":{"sub3":{"ip":"107.152.38.155"}}}}},"_tor":{"txt":"` + onionA + `"}}}`
	big := `{"txt":"` + strings.Repeat("x", MaxValueSize) + `"}`
	cases := []struct {
		value, query string
		status       int
		result       string
		extra        values
	}{
		// Onion from map._tor.txt.
		{e1, "testls.bit", 0, onionA, nil},
		{e1, "testls.bit.onion", 0, onionA, nil},
		{e1, "TestLS.Bit", 0, onionA, nil},
		{e1, "testls.bit.", 0, onionA, nil},
		{e1, "sub3.sub2.sub1.testls.bit", 0, "107.152.38.155", nil},
		{e1, "sub3.sub2.sub1.testls.bit.onion", 3, `"sub3.sub2.sub1.testls.bit.onion is not registered"`, nil},
		{e1, "www.testls.bit", 3, `"www.testls.bit is not registered"`, nil},
		{e1, "x.sub1.testls.bit", 3, `"x.sub1.testls.bit is not registered"`, nil},
		{`{"map":{"_tor":{"txt":["not-an-onion.example","` + onionB + `"]}}}`, "e.bit", 0, onionB, nil},
		{`{"map":{"_tor":{"txt":[["` + onionB[:20] + `","` + onionB[20:] + `"]]}}}`, "e.bit", 0, onionB, nil},
		{`{"map":{"_tor":{"txt":"` + strings.ToUpper(onionB) + `."}}}`, "e.bit", 0, onionB, nil},
		{`{"map":{"_tor":{"txt":"example.com"}},"ip":"1.2.3.4"}`, "e.bit", 0, "1.2.3.4", nil},
		{`{"map":{"_tor":{"txt":"example.com"}},"ip":"1.2.3.4"}`, "e.bit.onion", 3, `"e.bit.onion is not registered"`, nil},
		{`{"map":{"_tor":"` + onionA + `"}}`, "e.bit", 3, `"e.bit is not registered"`, nil}, // shorthand is an ip, not txt
		// Onion wins over ip.
		{`{"ip":"1.2.3.4","map":{"_tor":{"txt":"` + onionA + `"}}}`, "e.bit", 0, onionA, nil},
		// IPv4 and IPv6.
		{`{"ip":"192.0.2.1"}`, "e.bit", 0, "192.0.2.1", nil},
		{`{"ip":["192.0.2.1","192.0.2.2"]}`, "e.bit", 0, "192.0.2.1", nil},
		{`{"ip":["bogus","192.0.2.2"]}`, "e.bit", 0, "192.0.2.2", nil},
		{`{"ip":"2001:db8::1"}`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{`{"ip6":"2001:db8::1"}`, "e.bit", 0, "2001:db8::1", nil},
		{`{"ip6":["::BEef:1.2.3.4"]}`, "e.bit", 0, "::beef:102:304", nil},
		{`{"ip6":"2001:db8::1","ip":"192.0.2.1"}`, "e.bit", 0, "192.0.2.1", nil},
		{`{"ip6":"2001:db8::1","map":{"www":{"ip":"192.0.2.1"}}}`, "e.bit", 0, "2001:db8::1", nil},
		{`{"ip6":"2001:db8::1","map":{"www":{"ip":"192.0.2.1"}}}`, "www.e.bit", 0, "192.0.2.1", nil},
		{`{"ip":"1.2.3.4"}`, "e.bit.onion", 3, `"e.bit.onion is not registered"`, nil},
		// Alias (CNAME) wins over ip.
		{`{"alias":"www.example.com."}`, "e.bit", 0, "www.example.com", nil},
		{`{"alias":"www.example.com.","ip":"1.2.3.4"}`, "e.bit", 0, "www.example.com", nil},
		{`{"alias":"www.example.com."}`, "e.bit.onion", 3, `"e.bit.onion is not registered"`, nil},
		{`{"alias":"@","map":{"www":{"alias":"@"}}}`, "www.e.bit", 0, "e.bit", nil},
		{`{"map":{"www":{"alias":"host"}}}`, "www.e.bit", 0, "host.e.bit", nil},
		// ncdns's relative names (ncdomain qualify): relative to the name
		// itself at the top, to the parent of the name under "map"; "@" and
		// "x.@" under the name's own domain.
		{`{"alias":"host"}`, "e.bit", 0, "host.e.bit", nil},
		{`{"map":{"a":{"map":{"b":{"alias":"host"}}}}}`, "b.a.e.bit", 0, "host.a.e.bit", nil},
		{`{"map":{"a":{"map":{"b":{"alias":"host.@"}}}}}`, "b.a.e.bit", 0, "host.e.bit", nil},
		{`{"map":{"a":{"map":{"b":{"alias":"@"}}}}}`, "b.a.e.bit", 0, "e.bit", nil},
		{`{"map":{"www":{"alias":"host.sub.@"}}}`, "www.e.bit", 0, "host.sub.e.bit", nil},
		{`{"map":{"*":{"alias":"host"}}}`, "x.e.bit", 0, "host.e.bit", nil},
		{`{"alias":"","ip":"1.2.3.4"}`, "e.bit", 0, "e.bit", nil},
		{`{"map":{"www":{"alias":""}}}`, "www.e.bit", 0, "e.bit", nil},
		// An alias ncdns cannot parse is ignored (ip is used); one that
		// parses but qualifies to no host name hides ip and answers nothing.
		{`{"alias":"Example.COM.","ip":"1.2.3.4"}`, "e.bit", 0, "1.2.3.4", nil},
		{`{"alias":null,"ip":"1.2.3.4"}`, "e.bit", 0, "1.2.3.4", nil},
		{`{"alias":5,"ip":"1.2.3.4"}`, "e.bit", 0, "1.2.3.4", nil},
		{`{"alias":"under_score.example.","ip":"1.2.3.4"}`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{`{"translate":"other","map":{"www":{"ip":"1.2.3.4"}}}`, "x.e.bit", 0, "x.other.e.bit", nil},
		// Map: subdomains, wildcard, shorthand, "" merged into the parent.
		{`{"map":{"www":"192.0.2.7"}}`, "www.e.bit", 0, "192.0.2.7", nil},
		{`{"ip":"1.2.3.4","map":{"www":{"ip":"2.3.4.5"},"*":{"ip":"3.4.5.6"}}}`, "www.e.bit", 0, "2.3.4.5", nil},
		{`{"ip":"1.2.3.4","map":{"www":{"ip":"2.3.4.5"},"*":{"ip":"3.4.5.6"}}}`, "other.e.bit", 0, "3.4.5.6", nil},
		{`{"ip":"1.2.3.4","map":{"www":{"ip":"2.3.4.5"},"*":{"ip":"3.4.5.6"}}}`, "e.bit", 0, "1.2.3.4", nil},
		{`{"map":{"":{"ip":"5.5.5.5"}}}`, "e.bit", 0, "5.5.5.5", nil},
		{`{"ip":"6.6.6.6","map":{"":{"ip":"5.5.5.5"}}}`, "e.bit", 0, "6.6.6.6", nil},
		{`{"map":{"a":{"map":{"b":{"ip":"9.9.9.9"}}}}}`, "b.a.e.bit", 0, "9.9.9.9", nil},
		{`{"map":{"a":{"map":{"b":{"ip":"9.9.9.9"}}}}}`, "a.b.e.bit", 3, `"a.b.e.bit is not registered"`, nil},
		// Delegation and translate.
		{`{"ns":["ns1.example.com."],"ip":"1.2.3.4"}`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{`{"dns":["ns1.example.com."]}`, "www.e.bit", 3, `"www.e.bit is not registered"`, nil},
		{`{"translate":"example.com."}`, "www.e.bit", 0, "www.example.com", nil},
		// The owner of a translate keeps no ip of its own (nctestsuite
		// dname-and-ip); its onion is its target's.
		{`{"translate":"example.com.","ip":"1.2.3.4"}`, "e.bit", 3, `"e.bit is not registered"`, nil},
		// Imports.
		{`{"import":"dd/example2"}`, "e.bit", 0, "1.2.3.4", values{"dd/example2": `{"ip":"1.2.3.4"}`}},
		{`{"import":"dd/example2","ip":"5.6.7.8"}`, "e.bit", 0, "5.6.7.8", values{"dd/example2": `{"ip":"1.2.3.4"}`}},
		{`{"import":[["dd/example2"]]}`, "e.bit", 0, onionA, values{"dd/example2": `{"map":{"_tor":{"txt":"` + onionA + `"}}}`}},
		{`{"import":"dd/missing","ip":"5.6.7.8"}`, "e.bit", 0, "5.6.7.8", nil},
		{`{"import":"dd/loop"}`, "e.bit", 3, `"e.bit is not registered"`, values{"dd/loop": `{"import":"dd/loop"}`}},
		{`{"map":{"www":{"import":"dd/w"}}}`, "www.e.bit", 0, "4.4.4.4", values{"dd/w": `{"ip":"4.4.4.4"}`}},
		// Not a .bit name, bad names, broken values.
		{`{"ip":"1.2.3.4"}`, "example.com", 2, `"example.com is not a Namecoin domain"`, nil},
		{`{"ip":"1.2.3.4"}`, "bit", 2, `"bit is not a Namecoin domain"`, nil},
		{`{"ip":"1.2.3.4"}`, "e_x.bit", 1, `"Server failure"`, nil},
		{`{"ip":"1.2.3.4"}`, "-e.bit", 1, `"Server failure"`, nil},
		{`{"ip":"1.2.3.4"}`, "a..e.bit", 1, `"Server failure"`, nil},
		{`not json`, "e.bit", 1, `"Server failure"`, nil},
		{`""`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{`[]`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{big, "e.bit", 1, `"Server failure"`, nil},
		{`{"ip":{"nested":true}}`, "e.bit", 3, `"e.bit is not registered"`, nil},
		{`{"alias":"bad name with spaces."}`, "e.bit", 3, `"e.bit is not registered"`, nil},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d_%s", i, c.query), func(t *testing.T) {
			v := values{"d/testls": c.value, "d/e": c.value}
			for k, val := range c.extra {
				v[k] = val
			}
			a := Resolve(context.Background(), v.lookup, c.query, "s")
			if a.Status != c.status || a.Result != c.result {
				t.Fatalf("value %s, query %s: got %d %s, want %d %s", c.value, c.query, a.Status, a.Result, c.status, c.result)
			}
		})
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	// Not registered (-4) and a failing backend.
	if a := Resolve(context.Background(), values{}.lookup, "nothing.bit", "s"); a.Status != 3 || a.Result != `"nothing.bit is not registered"` {
		t.Fatalf("missing: %+v", a)
	}
	if a := Resolve(context.Background(), values{"d/down": ""}.lookup, "down.bit", "s"); a.Status != 1 {
		t.Fatalf("backend failure: %+v", a)
	}
}

// FuzzResolve: no value or query makes the mapping panic.
func FuzzResolve(f *testing.F) {
	f.Add(`{"ip":"1.2.3.4","map":{"*":{"alias":"@"}}}`, "a.e.bit")
	f.Add(`{"import":[["d/e"]],"map":{"":{"map":{"_tor":{"txt":[["a","b"]]}}}}}`, "e.bit.onion")
	f.Fuzz(func(t *testing.T, value, query string) {
		v := values{"d/e": value}
		a := Resolve(context.Background(), v.lookup, query, "s")
		if a.Status < 0 || a.Status > 3 || strings.ContainsAny(a.Result, "\n\r") {
			t.Fatalf("bad answer %+v", a)
		}
	})
}

// TestReferencesAsNcdns: import and delegate as ncdns resolves them, from
// the cases of the Namecoin domain-value test suite (nctestsuite) whose
// outcome shows in a Prop279 answer: a delegate replaces the whole value,
// references take a subdomain of the named value, a malformed or looping
// reference is ignored, and imported maps merge label by label.
func TestReferencesAsNcdns(t *testing.T) {
	ex2 := `{"ip6":"::dead","map":{"www":{"ip6":"::beef"}}}`
	ex2sub := `{"ip6":"::1","map":{"www":{"ip6":"::2","map":{"a":{"ip6":"::3"}}}}}`
	for _, c := range []struct {
		name, value, want string
		extra             values
	}{
		{"delegate-bare", `{"delegate":"dd/example2"}`, "1.2.3.4", values{"dd/example2": `{"ip":"1.2.3.4"}`}},
		{"delegate-precedence", `{"delegate":"dd/example2","ip":"2.3.4.5"}`, "1.2.3.4", values{"dd/example2": `{"ip":"1.2.3.4"}`}},
		{"delegate-nomerge", `{"delegate":"dd/example2","ip":"1.2.3.4"}`, "::beef", values{"dd/example2": `{"ip6":"::beef"}`}},
		{"double-delegate-nomerge", `{"delegate":"dd/example2","ip":"1.2.3.4"}`, "not registered",
			values{"dd/example2": `{"delegate":"dd/example3","ip6":"::beef"}`, "dd/example3": `{"srv":[[0,0,80,"www.example.bit."]]}`}},
		{"delegate-array2-nomerge", `{"delegate":["dd/example2",""],"ip":"1.2.3.4"}`, "::beef", values{"dd/example2": `{"ip6":"::beef"}`}},
		{"delegate-invalid", `{"delegate":["dd/example2","",""],"ip":"1.2.3.4"}`, "1.2.3.4", values{"dd/example2": `{"ip6":"::beef"}`}},
		{"delegate-self-recursion", `{"delegate":["d/example"],"ip":"1.2.3.4"}`, "1.2.3.4", nil},
		{"delegate-twopoint-recursion", `{"delegate":["dd/example2"],"ip":"1.2.3.4"}`, "::beef",
			values{"dd/example2": `{"delegate":["d/example"],"ip6":"::beef"}`}},
		{"delegate-one-twopoint-recursion", `{"delegate":["dd/example2"],"ip":"1.2.3.4"}`, "not registered",
			values{"dd/example2": `{"delegate":["dd/example3"],"ip6":"::beef"}`, "dd/example3": `{"delegate":["dd/example2"]}`}},
		{"delegate-subreference", `{"delegate":["dd/example2","www"],"ip":"1.2.3.4"}`, "::beef", values{"dd/example2": ex2}},
		{"delegate-subsubreference", `{"delegate":["dd/example2","a.www"],"ip":"1.2.3.4"}`, "::3", values{"dd/example2": ex2sub}},
		{"import-subreference", `{"import":["dd/example2","www"]}`, "::beef", values{"dd/example2": ex2}},
		{"import-subsubreference", `{"import":["dd/example2","a.www"]}`, "::3", values{"dd/example2": ex2sub}},
		{"import-invalid-form", `{"import":["dd/example2","",""]}`, "not registered", values{"dd/example2": `{"ip6":"::beef"}`}},
		{"import-array2-form", `{"import":["dd/example2",""]}`, "::beef", values{"dd/example2": `{"ip6":"::beef"}`}},
		{"import-twopoint-recursion", `{"import":["dd/example2"]}`, "::beef", values{"dd/example2": `{"import":["d/example"],"ip6":"::beef"}`}},
	} {
		v := values{"d/example": c.value}
		for k, x := range c.extra {
			v[k] = x
		}
		a := Resolve(context.Background(), v.lookup, "example.bit", "s")
		got := a.Result
		if a.Status == StatusNotRegistered {
			got = "not registered"
		}
		if got != c.want {
			t.Errorf("%s: %d %s, want %s", c.name, a.Status, a.Result, c.want)
		}
	}
	// An import never occludes another name's records: maps merge.
	v := values{"d/example": `{"import":"dd/example2","map":{"www":{"ip":"1.1.1.1"}}}`,
		"dd/example2": `{"map":{"mail":{"ip":"2.2.2.2"},"www":{"ip":"9.9.9.9","ip6":"::9"}}}`}
	for q, want := range map[string]string{"www.example.bit": "1.1.1.1", "mail.example.bit": "2.2.2.2"} {
		if a := Resolve(context.Background(), v.lookup, q, "s"); a.Result != want {
			t.Errorf("merged maps, %s: %+v, want %s", q, a, want)
		}
	}
}

// TestTranslateWildcardLabels: the rest of the d/ spec's edges as ncdns
// serves them. A translate (DNAME) hides its owner's ip and alias and
// redirects everything below it, _tor included; map["*"] answers a missing
// label, _tor too; a map key that is not a DNS label as written is skipped.
func TestTranslateWildcardLabels(t *testing.T) {
	v := values{
		"d/moved":  `{"translate":"target.bit.","ip":"1.2.3.4","alias":"x.example.com."}`,
		"d/target": `{"ip":"5.6.7.8","map":{"_tor":{"txt":"` + onionA + `"},"www":{"map":{"_tor":{"txt":"` + onionB + `"}}}}}`,
		"d/loop":   `{"translate":"loop2.bit."}`,
		"d/loop2":  `{"translate":"loop.bit."}`,
		"d/wild":   `{"map":{"*":{"txt":"` + onionB + `","ip":"9.9.9.9"}}}`,
		"d/upper":  `{"map":{"WWW":{"ip":"1.1.1.1"},"ok":{"ip":"2.2.2.2"}}}`,
	}
	for _, c := range []struct {
		query, want string
	}{
		{"moved.bit", onionA},               // the target's onion, not the owner's ip
		{"moved.bit.onion", onionA},         // likewise
		{"www.moved.bit", "www.target.bit"}, // below: the name under the target
		{"www.moved.bit.onion", onionB},     // and its _tor, under the target
		{"loop.bit", "not registered"},      // translations that loop end
		{"x.wild.bit", onionB},              // the wildcard's _tor
		{"x.wild.bit.onion", onionB},
		{"www.upper.bit", "not registered"}, // "WWW" is not a label
		{"ok.upper.bit", "2.2.2.2"},
	} {
		a := Resolve(context.Background(), v.lookup, c.query, "s")
		got := a.Result
		if a.Status == StatusNotRegistered {
			got = "not registered"
		}
		if got != c.want {
			t.Errorf("%s: %d %s, want %s", c.query, a.Status, a.Result, c.want)
		}
	}
}
