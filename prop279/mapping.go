// Package prop279 turns a .bit name's Namecoin value into the answer Tor's
// Prop279 naming plugins give (an onion service, an IPv4 or IPv6 address,
// or a host name), the way ncprop279 does through ncdns, and speaks the
// Prop279 protocol on a pair of streams. The mapping is pure: lookups come
// through a function.
package prop279

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// Prop279 status codes.
const (
	StatusSuccess       = 0
	StatusFailure       = 1
	StatusNotOurTLD     = 2
	StatusNotRegistered = 3
)

// ErrNotFound is what a Lookup returns for a name that never existed or
// has expired (RPC code -4): the answer is "not registered".
var ErrNotFound = errors.New("name not found")

// Lookup fetches the current value of a Namecoin name (e.g. "d/example")
// for a stream isolation ID.
type Lookup func(ctx context.Context, name, streamID string) ([]byte, error)

// MaxValueSize is the largest value accepted; Namecoin values are at most
// 1023 bytes, imports add a few more.
const MaxValueSize = 64 << 10

// maxImportDepth bounds chains of "import" (ncdns uses a small bound too).
const maxImportDepth = 4

// labelRE is ncdns's ValidateDomainLabel.
var labelRE = regexp.MustCompile(`^(xn--)?([a-z0-9]+-)*[a-z0-9]+$`)

// Answer is a Prop279 result.
type Answer struct {
	Status int
	Result string
}

func notRegistered(q string) Answer {
	return Answer{StatusNotRegistered, fmt.Sprintf("%q", q+" is not registered")}
}

var serverFailure = Answer{StatusFailure, `"Server failure"`}

// Resolve answers one query as ncprop279 would: NAME.bit, SUB.NAME.bit, or
// NAME.bit.onion (onion answers only). The onion service in
// map._tor.txt comes first, then alias (a CNAME hides the addresses, as in
// ncdns), then ip, then ip6.
func Resolve(ctx context.Context, lookup Lookup, query, streamID string) Answer {
	a, _ := ResolveWith(ctx, lookup, query, streamID, Options{})
	return a
}

// Options tune ResolveWith.
type Options struct {
	// OnlyOnion answers only with onion services, as for NAME.bit.onion
	// (ncprop279's -ncprop279.onlyonion, which StemNS users set): a name
	// without one is "not registered".
	OnlyOnion bool
}

// ResolveWith is Resolve with options; for a server failure (status 1)
// it also returns the cause, to log.
func ResolveWith(ctx context.Context, lookup Lookup, query, streamID string, o Options) (Answer, error) {
	name := strings.TrimSuffix(strings.ToLower(query), ".")
	onlyOnion := o.OnlyOnion
	if strings.HasSuffix(name, ".bit.onion") {
		name, onlyOnion = strings.TrimSuffix(name, ".onion"), true
	}
	if !strings.HasSuffix(name, ".bit") {
		return Answer{StatusNotOurTLD, fmt.Sprintf("%q", query+" is not a Namecoin domain")}, nil
	}
	labels := strings.Split(strings.TrimSuffix(name, ".bit"), ".")
	base := labels[len(labels)-1]
	subs := labels[:len(labels)-1]
	if !labelRE.MatchString(base) || len(base) > 63 {
		return serverFailure, errors.New("the name is not a valid domain label")
	}
	for _, l := range subs {
		if l == "" || len(l) > 63 {
			return serverFailure, errors.New("a subdomain label is empty or too long")
		}
	}
	root, err := loadValue(ctx, lookup, "d/"+base, streamID, 0)
	if errors.Is(err, ErrNotFound) {
		return notRegistered(query), nil
	}
	if err != nil {
		return serverFailure, err
	}
	node, rest, err := walk(ctx, lookup, root, subs, streamID)
	if err != nil {
		return serverFailure, err
	}
	if node == nil {
		return notRegistered(query), nil
	}
	// A delegation hides everything else (ncprop279 refuses NS/DS).
	if node.has("ns") || node.has("dns") {
		return notRegistered(query), nil
	}
	if len(rest) > 0 {
		// Below a translate (DNAME): the remaining labels under its target.
		if t, ok := node.relName("translate"); ok && !onlyOnion {
			owner := strings.Join(append(subs[len(rest):len(subs):len(subs)], base, "bit"), ".")
			if target := qualify(t, owner, base+".bit", len(rest) == len(subs)); target != "" {
				return Answer{StatusSuccess, strings.Join(rest, ".") + "." + target}, nil
			}
		}
		return notRegistered(query), nil
	}
	if onion := node.onion(); onion != "" {
		return Answer{StatusSuccess, onion}, nil
	}
	if onlyOnion {
		return notRegistered(query), nil
	}
	// An alias (CNAME) hides ip and ip6, as ncdns emits only the CNAME.
	if a, ok := node.relName("alias"); ok {
		if target := qualify(a, name, base+".bit", len(subs) == 0); target != "" {
			return Answer{StatusSuccess, target}, nil
		}
		return notRegistered(query), nil
	}
	if ip := node.firstIP("ip", false); ip != "" {
		return Answer{StatusSuccess, ip}, nil
	}
	if ip := node.firstIP("ip6", true); ip != "" {
		return Answer{StatusSuccess, ip}, nil
	}
	return notRegistered(query), nil
}

// relOwnerNameRE is ncdns's relative owner name: "", "@", or lower-case
// labels with an optional trailing "." or ".@". An alias or translate
// that does not match is ignored, as ncdns ignores it.
var relOwnerNameRE = regexp.MustCompile(`^(|@|(` + ownerLabel + `\.)*` + ownerLabel + `(\.@?)?)$`)

const ownerLabel = `([a-z0-9_]|[a-z0-9_][a-z0-9_-]{0,61}[a-z0-9_])`

// hostNameRE is ncdns's host name, which a qualified target must be.
var hostNameRE = regexp.MustCompile(`^` + hostLabel + `(\.` + hostLabel + `)*\.?$`)

const hostLabel = `([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])`

// relName reads an alias or translate the way ncdns does: a string that
// is a relative owner name; null, other types and malformed names count
// as absent.
func (n node) relName(k string) (string, bool) {
	if bytes.Equal(bytes.TrimSpace(n[k]), []byte("null")) {
		return "", false
	}
	s, ok := n.str(k)
	if !ok || len(s) > 255 || !relOwnerNameRE.MatchString(s) {
		return "", false
	}
	return s, true
}

// qualify makes an alias or translate target absolute as ncdns does, and
// returns it without the trailing dot, or "" when the result is not a
// host name. "x." is absolute; "@" is the name's own domain (apex) and
// "x.@" a name under it; anything else is relative to owner, the name
// the value belongs to, or for a value under "map" to owner's parent.
func qualify(target, owner, apex string, topLevel bool) string {
	suffix := owner
	if !topLevel {
		_, suffix, _ = strings.Cut(owner, ".")
	}
	var abs string
	switch {
	case strings.HasSuffix(target, "."):
		abs = strings.TrimSuffix(target, ".")
	case target == "":
		abs = suffix
	case target == "@":
		abs = apex
	case strings.HasSuffix(target, ".@"):
		abs = strings.TrimSuffix(target, "@") + apex
	default:
		abs = target + "." + suffix
	}
	if abs == "" || len(abs) > 253 || !hostNameRE.MatchString(abs) {
		return ""
	}
	return abs
}

func validHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || strings.ContainsAny(l, " \t\n\r\"\\") {
			return false
		}
	}
	return true
}

// node is one level of a domain value.
type node map[string]json.RawMessage

func (n node) has(k string) bool { _, ok := n[k]; return ok }

func (n node) str(k string) (string, bool) {
	raw, ok := n[k]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// strs reads a string or a list of strings.
func (n node) strs(k string) []string {
	raw, ok := n[k]
	if !ok {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	return nil
}

func (n node) firstIP(k string, v6 bool) string {
	for _, s := range n.strs(k) {
		ip := net.ParseIP(s)
		if ip == nil {
			continue
		}
		if (ip.To4() != nil) != v6 {
			return ip.String()
		}
	}
	return ""
}

// onion is the first .onion host in map._tor.txt.
func (n node) onion() string {
	m := n.mapOf()
	if m == nil {
		return ""
	}
	tor, ok := m["_tor"]
	if !ok {
		return ""
	}
	for _, t := range tor.txts() {
		t = strings.ToLower(strings.TrimSuffix(t, "."))
		if strings.HasSuffix(t, ".onion") && validHost(t) {
			return t
		}
	}
	return ""
}

// txts reads txt as a string, a list of strings, or a list of lists.
func (n node) txts() []string {
	raw, ok := n["txt"]
	if !ok {
		return nil
	}
	if s := n.strs("txt"); s != nil {
		return s
	}
	var lists [][]string
	if json.Unmarshal(raw, &lists) == nil {
		var out []string
		for _, l := range lists {
			out = append(out, strings.Join(l, ""))
		}
		return out
	}
	return nil
}

// mapOf returns the "map" member as nodes; a string entry is shorthand
// for {"ip": [string]}.
func (n node) mapOf() map[string]node {
	raw, ok := n["map"]
	if !ok {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := map[string]node{}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			b, _ := json.Marshal([]string{s})
			out[strings.ToLower(k)] = node{"ip": b}
			continue
		}
		var sub node
		if json.Unmarshal(v, &sub) == nil {
			out[strings.ToLower(k)] = sub
		}
	}
	return out
}

// walk descends through "map" for the sub-labels, right to left, falling
// back to "*" at each level; "" entries merge into their parent. It stops
// early at a delegation or a translate and returns the labels left.
func walk(ctx context.Context, lookup Lookup, n node, subs []string, streamID string) (node, []string, error) {
	for i := len(subs) - 1; i >= 0; i-- {
		n = mergeEmpty(n)
		if n.has("ns") || n.has("dns") || n.has("translate") {
			return n, subs[:i+1], nil
		}
		m := n.mapOf()
		next, ok := m[subs[i]]
		if !ok {
			next, ok = m["*"]
		}
		if !ok {
			return nil, nil, nil
		}
		var err error
		if next, err = resolveImports(ctx, lookup, next, streamID, 1); err != nil {
			return nil, nil, err
		}
		n = next
	}
	return mergeEmpty(n), nil, nil
}

// mergeEmpty merges map[""] into the node itself (ncdns's moveEmptyMapItems);
// the node's own keys win.
func mergeEmpty(n node) node {
	m := n.mapOf()
	empty, ok := m[""]
	if !ok {
		return n
	}
	out := node{}
	for k, v := range empty {
		out[k] = v
	}
	for k, v := range n {
		out[k] = v
	}
	return out
}

// loadValue looks a name up, parses its JSON value and applies imports.
func loadValue(ctx context.Context, lookup Lookup, name, streamID string, depth int) (node, error) {
	raw, err := lookup(ctx, name, streamID)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxValueSize {
		return nil, fmt.Errorf("value of %d bytes", len(raw))
	}
	var n node
	if err := json.Unmarshal(raw, &n); err != nil {
		// JSON that is not an object (e.g. []) is an empty zone.
		var other json.RawMessage
		if json.Unmarshal(raw, &other) == nil {
			return node{}, nil
		}
		return nil, fmt.Errorf("value is not JSON: %w", err)
	}
	return resolveImports(ctx, lookup, n, streamID, depth)
}

// resolveImports merges the values named by "import" under n: n's own
// keys win. Failed imports are skipped, as ncdns skips them.
func resolveImports(ctx context.Context, lookup Lookup, n node, streamID string, depth int) (node, error) {
	raw, ok := n["import"]
	if !ok {
		return n, nil
	}
	if depth >= maxImportDepth {
		return n, nil
	}
	var names []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		names = []string{one}
	} else {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, item := range list {
				var s string
				var pair []string
				switch {
				case json.Unmarshal(item, &s) == nil:
					names = append(names, s)
				case json.Unmarshal(item, &pair) == nil && len(pair) >= 1:
					names = append(names, pair[0])
				}
			}
		}
	}
	out := node{}
	for _, name := range names {
		imported, err := loadValue(ctx, lookup, name, streamID, depth+1)
		if err != nil {
			continue
		}
		for k, v := range imported {
			out[k] = v
		}
	}
	for k, v := range n {
		if k != "import" {
			out[k] = v
		}
	}
	return out, nil
}
