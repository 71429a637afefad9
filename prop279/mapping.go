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
	"slices"
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
	return resolve(ctx, lookup, query, streamID, o, 0)
}

// maxTranslations bounds chains of translate (DNAME) from one .bit name to
// another, which may loop.
const maxTranslations = 4

func resolve(ctx context.Context, lookup Lookup, query, streamID string, o Options, translations int) (Answer, error) {
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
	root, err := loadValue(ctx, lookup, "d/"+base, streamID, nil)
	if errors.Is(err, ErrNotFound) {
		return notRegistered(query), nil
	}
	if err != nil {
		return serverFailure, err
	}
	node, rest, wild, err := walk(ctx, lookup, root, subs, streamID, []string{"d/" + base})
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
	// A translate (DNAME) redirects every name below its owner, _tor
	// included, and hides the owner's own ip and alias, as ncdns serves it:
	// the owner has the onion of its target's _tor, if any; a name below it
	// is that name under the target.
	if t, ok := node.relName("translate"); ok {
		owner := strings.Join(append(subs[len(rest):len(subs):len(subs)], base, "bit"), ".")
		target := qualify(t, owner, base+".bit", len(rest) == len(subs))
		if target == "" {
			return notRegistered(query), nil
		}
		// The owner itself is only ever answered with its target's onion;
		// a name below it may be answered with the redirected name.
		redirected := target
		if len(rest) > 0 {
			redirected = strings.Join(rest, ".") + "." + target
			if !onlyOnion {
				return Answer{StatusSuccess, redirected}, nil
			}
		}
		if !strings.HasSuffix(redirected, ".bit") || translations >= maxTranslations {
			return notRegistered(query), nil
		}
		a, err := resolve(ctx, lookup, redirected, streamID, Options{OnlyOnion: true}, translations+1)
		if a.Status != StatusSuccess && a.Status != StatusFailure {
			return notRegistered(query), nil
		}
		return a, err
	}
	if len(rest) > 0 {
		return notRegistered(query), nil
	}
	onion := node.onion()
	if onion == "" && wild {
		onion = firstOnion(node.txts()) // _tor.NAME matches the same wildcard
	}
	if onion != "" {
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

// mapLabelRE is a map key that names a subdomain.
var mapLabelRE = regexp.MustCompile(`^` + ownerLabel + `$`)

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
		tor, ok = m["*"] // a wildcard answers for a missing _tor too
	}
	if !ok {
		return ""
	}
	return firstOnion(tor.txts())
}

// firstOnion is the first .onion host among TXT strings.
func firstOnion(txts []string) string {
	for _, t := range txts {
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
		// "" is the name itself and "*" the wildcard; any other key must
		// be a DNS label as written (ncdns skips "WWW" rather than
		// lower-casing it).
		if k != "" && k != "*" && !mapLabelRE.MatchString(k) {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			b, _ := json.Marshal([]string{s})
			out[k] = node{"ip": b}
			continue
		}
		var sub node
		if json.Unmarshal(v, &sub) == nil {
			out[k] = sub
		}
	}
	return out
}

// walk descends through "map" for the sub-labels, right to left, falling
// back to "*" at each level; "" entries merge into their parent. It stops
// early at a delegation or a translate and returns the labels left.
//
// wild reports that the last label was answered by a wildcard: then the
// name has no node of its own, and the wildcard answers for the names
// below it too (its _tor, say).
func walk(ctx context.Context, lookup Lookup, n node, subs []string, streamID string, chain []string) (_ node, rest []string, wild bool, _ error) {
	for i := len(subs) - 1; i >= 0; i-- {
		n = mergeEmpty(n)
		if n.has("ns") || n.has("dns") || n.has("translate") {
			return n, subs[:i+1], false, nil
		}
		m := n.mapOf()
		next, ok := m[subs[i]]
		wild = false
		if !ok {
			next, ok = m["*"]
			wild = true
		}
		if !ok {
			return nil, nil, false, nil
		}
		var err error
		if next, err = expand(ctx, lookup, next, streamID, chain); err != nil {
			return nil, nil, false, err
		}
		n = next
	}
	return mergeEmpty(n), nil, wild, nil
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

// loadValue looks a name up, parses its JSON value and applies its
// delegate and imports. chain holds the names being resolved above it: a
// reference back to one of them is recursion, which ncdns ignores.
func loadValue(ctx context.Context, lookup Lookup, name, streamID string, chain []string) (node, error) {
	if slices.Contains(chain, name) {
		return nil, errRecursion
	}
	if len(chain) >= maxImportDepth {
		return nil, errTooDeep
	}
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
	return expand(ctx, lookup, n, streamID, append(slices.Clip(chain), name))
}

var (
	errRecursion = errors.New("a reference back to a name being resolved")
	errTooDeep   = errors.New("references nested too deep")
)

// ref is an import or delegate reference: a name, and a subdomain of it
// (dot-separated labels, "" for the name itself).
type ref struct{ name, sub string }

// parseRefs reads an import or delegate value as ncdns does: "name",
// ["name"], ["name", "sub"], or a list of those; anything else (["a","b",
// "c"], numbers) is invalid, and ignored.
func parseRefs(raw json.RawMessage) []ref {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []ref{{name: one}}
	}
	var pair []string
	if json.Unmarshal(raw, &pair) == nil {
		switch len(pair) {
		case 1:
			return []ref{{name: pair[0]}}
		case 2:
			return []ref{{name: pair[0], sub: pair[1]}}
		}
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []ref
	for _, item := range list {
		var p []string
		if json.Unmarshal(item, &p) == nil && (len(p) == 1 || len(p) == 2) {
			r := ref{name: p[0]}
			if len(p) == 2 {
				r.sub = p[1]
			}
			out = append(out, r)
		}
	}
	return out
}

// follow resolves a reference: the named value, then down its map to the
// subdomain (labels right to left), each level's own references applied.
// A missing subdomain is an empty value.
func follow(ctx context.Context, lookup Lookup, r ref, streamID string, chain []string) (node, error) {
	n, err := loadValue(ctx, lookup, r.name, streamID, chain)
	if err != nil {
		return nil, err
	}
	if r.sub == "" {
		return n, nil
	}
	labels := strings.Split(strings.ToLower(r.sub), ".")
	for i := len(labels) - 1; i >= 0; i-- {
		next, ok := n.mapOf()[labels[i]]
		if !ok {
			return node{}, nil
		}
		if n, err = expand(ctx, lookup, next, streamID, chain); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// expand applies a value's delegate and imports, as ncdns does. A valid
// delegate replaces the whole value with the one it names (nothing of the
// value's own is kept); imports are merged under it, its own keys winning,
// and maps merged label by label. References that fail, loop back or are
// malformed are ignored.
func expand(ctx context.Context, lookup Lookup, n node, streamID string, chain []string) (node, error) {
	if raw, ok := n["delegate"]; ok {
		if refs := parseRefs(raw); len(refs) == 1 {
			d, err := follow(ctx, lookup, refs[0], streamID, chain)
			if err == nil {
				return d, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	raw, ok := n["import"]
	if !ok {
		return without(n, "delegate"), nil
	}
	out := node{}
	for _, r := range parseRefs(raw) {
		imported, err := follow(ctx, lookup, r, streamID, chain)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		out = merge(out, imported)
	}
	return merge(out, without(n, "import", "delegate")), nil
}

// merge lays over on top of under: over's keys win, except "map", whose
// labels merge one by one (an import never occludes a record set of
// another name, such as an SRV under _tcp).
func merge(under, over node) node {
	out := node{}
	for k, v := range under {
		out[k] = v
	}
	for k, v := range over {
		if k == "map" && under.has("map") {
			um, om := under.rawMap(), over.rawMap()
			if um != nil && om != nil {
				merged := map[string]json.RawMessage{}
				for l, sub := range um {
					merged[l] = sub
				}
				for l, sub := range om {
					var a, b node
					if prev, ok := merged[l]; ok && json.Unmarshal(prev, &a) == nil && json.Unmarshal(sub, &b) == nil {
						sub, _ = json.Marshal(merge(a, b))
					}
					merged[l] = sub
				}
				out["map"], _ = json.Marshal(merged)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// rawMap is the "map" member undecoded, or nil.
func (n node) rawMap() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if raw, ok := n["map"]; !ok || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func without(n node, keys ...string) node {
	out := node{}
	for k, v := range n {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}
