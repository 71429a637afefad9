package rpc_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/namecoin/ncbtcjson"
	"github.com/namecoin/ncrpcclient"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/rpc"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// realBackend is an spv engine over a fake ElectrumX serving a chain with
// d/example (live, updated at 50), d/expired (registered at 8) at tip 60.
func realBackend(t *testing.T) *spv.Engine {
	t.Helper()
	p := &headers.RegTestParams
	g := chaingen.New(p, 91)
	for h := 1; h <= 60; h++ {
		var txs [][]byte
		switch h {
		case 8:
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte("d/expired"), []byte("old"), [20]byte{8}, 0, 8))
		case 40:
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte("d/example"), []byte(`{"ip":"1.2.3.4"}`), [20]byte{1}, 0, 40))
		case 50:
			txs = append(txs, chaingen.NameTx(chaingen.OpUpdate, []byte("d/example"), []byte(`{"ip":"5.6.7.8"}`), [20]byte{2}, 1, 50))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	srv, err := electrumxtest.NewServer(b, electrumxtest.Options{Pad: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cp := checkpoints.ForNetwork(p)
	store, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, cp.Anchor(), headers.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pool := electrumx.NewPool(electrumx.Config{})
	t.Cleanup(pool.Close)
	e, err := spv.New(spv.Config{Params: p, Addresses: spv.RegTestAddresses, Checkpoint: cp, Store: store,
		Servers: []electrumx.Server{srv.Address()}, Router: tor.NewRouter(tor.Direct), Pool: pool,
		Confirmations: 3, QueryServers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// serve starts the RPC server on a free loopback port.
func serve(t *testing.T, cfg rpc.Config) (string, *rpc.Server) {
	t.Helper()
	s, err := rpc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.NewHTTPServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return ln.Addr().String(), s
}

func ncClient(t *testing.T, cfg *rpcclient.ConnConfig) *ncrpcclient.Client {
	t.Helper()
	cfg.HTTPPostMode, cfg.DisableTLS = true, true
	c, err := ncrpcclient.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// TestNcrpcclient drives the RPC with the exact client library ncprop279
// uses, with user/password and with the cookie file: name_show with and
// without a stream ID returns the value; a missing and an expired name
// come back as the -4 that ncdns maps to NXDOMAIN.
func TestNcrpcclient(t *testing.T) {
	e := realBackend(t)
	cookie := filepath.Join(t.TempDir(), "run", ".cookie")
	userAddr, _ := serve(t, rpc.Config{Backend: e, Chain: "regtest", User: "user", Pass: "secret"})
	cookieAddr, _ := serve(t, rpc.Config{Backend: e, Chain: "regtest", CookiePath: cookie})
	if st, err := os.Stat(cookie); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cookie file: %v %v", st, err)
	}
	clients := map[string]*ncrpcclient.Client{
		"user/password": ncClient(t, &rpcclient.ConnConfig{Host: userAddr, User: "user", Pass: "secret"}),
		"cookie":        ncClient(t, &rpcclient.ConnConfig{Host: cookieAddr, CookiePath: cookie}),
	}
	for how, c := range clients {
		t.Run(how, func(t *testing.T) {
			for _, opts := range []*ncbtcjson.NameShowOptions{nil, {StreamID: "stemns-1a2b-3"}} {
				r, err := c.NameShow("d/example", opts)
				if err != nil {
					t.Fatalf("name_show %+v: %v", opts, err)
				}
				if r.Value != `{"ip":"5.6.7.8"}` || r.Height != 50 || r.Vout != 1 || r.Expired {
					t.Fatalf("result %+v", r)
				}
			}
			r, err := c.NameShow("d/example", &ncbtcjson.NameShowOptions{ValueEncoding: ncbtcjson.Hex, NameEncoding: ncbtcjson.Hex})
			if err != nil || r.Value != `{"ip":"5.6.7.8"}` || r.Name != "d/example" {
				t.Fatalf("hex encodings: %+v %v", r, err)
			}
			for name, msg := range map[string]string{
				"d/missing": "name never existed: 'd/missing'",
				"d/expired": "name expired: 'd/expired'",
			} {
				_, err := c.NameShow(name, &ncbtcjson.NameShowOptions{StreamID: "s"})
				var rerr *btcjson.RPCError
				if !errors.As(err, &rerr) || rerr.Code != -4 || rerr.Message != msg {
					t.Fatalf("%s: want -4 %q, got %v", name, msg, err)
				}
			}
		})
	}
}

// TestNameShowEdgesAsCore: name_show's answers at its edges, as Namecoin
// Core gives them: a name invalid in its encoding is -1000, an encoding
// Core does not know falls back to the default, an empty or over-long
// name never existed.
func TestNameShowEdgesAsCore(t *testing.T) {
	addr, _ := serve(t, rpc.Config{Backend: realBackend(t), Chain: "regtest", User: "u", Pass: "p"})
	call := func(params string) rawReply {
		return post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":`+params+`}`)
	}
	long := strings.Repeat("a", 256)
	for _, c := range []struct {
		params string
		code   float64
		msg    string
	}{
		{`["zz",{"nameEncoding":"hex"}]`, -1000, "Name/value is invalid for encoding hex"},
		{`["d/\u0001",{"nameEncoding":"ascii"}]`, -1000, "Name/value is invalid for encoding ascii"},
		{`[""]`, -4, "name never existed: ''"},
		{`["` + long + `"]`, -4, "name never existed: '" + long + "'"},
	} {
		if r := call(c.params); errCode(r) != c.code || errMessage(r) != c.msg {
			t.Errorf("%.60s: %s, Core answers %v %q", c.params, r.text, c.code, c.msg)
		}
	}
	r := call(`["d/example",{"nameEncoding":"base64","valueEncoding":"nonsense"}]`)
	res, _ := r.body["result"].(map[string]any)
	if res["name"] != "d/example" || res["name_encoding"] != "ascii" || res["value_encoding"] != "ascii" {
		t.Errorf("unknown encodings: %s, want the ascii defaults as Core", r.text)
	}
}

// stub is a backend with fixed answers.
type stub struct{ slow time.Duration }

func (s stub) NameShow(ctx context.Context, name []byte, _ spv.LookupOptions) (*spv.NameResult, error) {
	if s.slow > 0 {
		time.Sleep(s.slow)
	}
	switch string(name) {
	case "d/x":
		return &spv.NameResult{Name: name, Value: []byte("v"), Height: 5, ExpiresIn: 10}, nil
	case "d/syncing":
		return nil, spv.ErrSyncing
	case "d/panic":
		panic("boom")
	case "d/noserver":
		return nil, fmt.Errorf("%w: %w", spv.ErrNoServer, errors.New("ssl://a.onion:50002: certificate changed"))
	case "d/syncing-notor":
		return nil, fmt.Errorf("%w: %w", spv.ErrSyncing, fmt.Errorf("%w: %w", spv.ErrNoServer,
			&tor.ProxyUnreachableError{Proxy: "127.0.0.1:9050", Err: errors.New("connection refused")}))
	case "d/notor":
		return nil, fmt.Errorf("%w: %w", spv.ErrNoServer,
			&tor.ProxyUnreachableError{Proxy: "127.0.0.1:9050", Err: errors.New("connection refused")})
	}
	return nil, &spv.NameError{Kind: spv.NameNeverExisted, Name: name}
}

func (stub) State() spv.State {
	return spv.State{Height: 7, TipHash: "ab", ServerHeight: 9, Synced: true, Warning: "check the clock"}
}

type rawReply struct {
	status int
	header http.Header
	body   map[string]any
	text   string
}

func post(t *testing.T, addr, user, pass, method, body string) rawReply {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+"/", strings.NewReader(body))
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawReply{status: resp.StatusCode, header: resp.Header, text: string(b)}
	json.Unmarshal(b, &r.body)
	return r
}

func errCode(r rawReply) float64 {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func errMessage(r rawReply) string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// TestAbuse: each kind of bad request gets its documented answer and
// nothing crashes.
func TestAbuse(t *testing.T) {
	addr, _ := serve(t, rpc.Config{Backend: stub{}, Chain: "regtest", User: "u", Pass: "p", MaxBody: 4096})
	show := `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/x"]}`

	if r := post(t, addr, "", "", "POST", show); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no auth: %d %v", r.status, r.header)
	}
	if r := post(t, addr, "u", "wrong", "POST", show); r.status != 401 {
		t.Fatalf("wrong password: %d", r.status)
	}
	if r := post(t, addr, "u", "p", "GET", ""); r.status != 405 {
		t.Fatalf("GET: %d", r.status)
	}
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"sendtoaddress","params":[]}`); r.status != 404 || errCode(r) != -32601 {
		t.Fatalf("unknown method: %d %s", r.status, r.text)
	}
	if r := post(t, addr, "u", "p", "POST", strings.Repeat("x", 10000)); r.status != 413 {
		t.Fatalf("huge body: %d", r.status)
	}
	if r := post(t, addr, "u", "p", "POST", `{"method":`); r.status != 500 || errCode(r) != -32700 {
		t.Fatalf("bad JSON: %d %s", r.status, r.text)
	}
	for _, bad := range []string{`[]`, `[1]`, `["d/x","base64"]`, `["d/x",{"streamID":"a"},3]`, `{"identifier":5}`, `"d/x"`} {
		r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":`+bad+`}`)
		if r.status != 500 || errCode(r) != -32602 {
			t.Fatalf("bad params %s: %d %s", bad, r.status, r.text)
		}
	}
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/syncing"]}`); errCode(r) != -10 {
		t.Fatalf("syncing: %s", r.text)
	}
	// No server: a dead Tor proxy, the one cause, is named; other causes
	// stay in the log.
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/noserver"]}`); errCode(r) != -1 ||
		errMessage(r) != "no ElectrumX server reachable" {
		t.Fatalf("no server: %s", r.text)
	}
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/syncing-notor"]}`); errCode(r) != -10 ||
		!strings.Contains(errMessage(r), "syncing block headers: cannot reach the Tor SOCKS proxy 127.0.0.1:9050") {
		t.Fatalf("syncing, tor not running: %s", r.text)
	}
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/notor"]}`); errCode(r) != -1 ||
		!strings.Contains(errMessage(r), "cannot reach the Tor SOCKS proxy 127.0.0.1:9050 (is Tor running?") {
		t.Fatalf("tor not running: %s", r.text)
	}
	if r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/panic"]}`); r.status != 500 || errCode(r) != -1 {
		t.Fatalf("panic in backend: %d %s", r.status, r.text)
	}
	// JSON-RPC 2.0: always HTTP 200, no result member on errors.
	r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"2.0","id":"a","method":"name_show","params":["d/none"]}`)
	if r.status != 200 || errCode(r) != -4 || r.body["jsonrpc"] != "2.0" {
		t.Fatalf("2.0 error: %d %s", r.status, r.text)
	}
	if _, has := r.body["result"]; has {
		t.Fatal("2.0 error reply carries a result")
	}
	// Electrum-NMC positional form and named parameters.
	for _, params := range []string{`["d/x","ascii","ascii","stream"]`, `{"identifier":"d/x","options":{"streamID":"s"}}`, `{"name":"d/x","stream_id":"s"}`} {
		r := post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"name_show","params":`+params+`}`)
		res, _ := r.body["result"].(map[string]any)
		if r.status != 200 || res["value"] != "v" {
			t.Fatalf("params %s: %d %s", params, r.status, r.text)
		}
	}
	// Batches.
	r = post(t, addr, "u", "p", "POST", `[`+show+`,{"jsonrpc":"1.0","id":2,"method":"getblockcount"}]`)
	var batch []map[string]any
	if err := json.Unmarshal([]byte(r.text), &batch); err != nil || len(batch) != 2 || batch[1]["result"] != float64(7) {
		t.Fatalf("batch: %s", r.text)
	}
	r = post(t, addr, "u", "p", "POST", `{"jsonrpc":"1.0","id":1,"method":"getblockchaininfo"}`)
	info, _ := r.body["result"].(map[string]any)
	if info["chain"] != "regtest" || info["blocks"] != float64(7) || info["headers"] != float64(7) || info["bestblockhash"] != "ab" ||
		info["warnings"] != "check the clock" {
		t.Fatalf("getblockchaininfo: %s", r.text)
	}
}

// TestConcurrentRequests sends 1,000 requests at once; each gets its
// answer while at most MaxConcurrent run.
func TestConcurrentRequests(t *testing.T) {
	addr, _ := serve(t, rpc.Config{Backend: stub{slow: time.Millisecond}, User: "u", Pass: "p", MaxConcurrent: 16})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 200, MaxIdleConnsPerHost: 200}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+addr+"/", bytes.NewBufferString(`{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/x"]}`))
			req.SetBasicAuth("u", "p")
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Contains(b, []byte(`"value":"v"`)) {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1000 {
		t.Fatalf("%d of 1000 concurrent requests answered", ok)
	}
}

func TestStopAndCookieRemoval(t *testing.T) {
	stopped := make(chan struct{})
	cookie := filepath.Join(t.TempDir(), ".cookie")
	s, err := rpc.New(rpc.Config{Backend: stub{}, CookiePath: cookie, Stop: func() { close(stopped) }})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cookie)
	user, pass, _ := strings.Cut(string(b), ":")
	if user != rpc.CookieUser || len(pass) != 64 {
		t.Fatalf("cookie %q", b)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := s.NewHTTPServer()
	go hs.Serve(ln)
	defer hs.Close()
	r := post(t, ln.Addr().String(), user, pass, "POST", `{"jsonrpc":"1.0","id":1,"method":"stop"}`)
	if r.status != 200 {
		t.Fatalf("stop: %d %s", r.status, r.text)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not reach the shutdown path")
	}
	s.Close()
	if _, err := os.Stat(cookie); !os.IsNotExist(err) {
		t.Fatal("cookie file left behind")
	}
	if _, err := rpc.New(rpc.Config{Backend: stub{}}); err == nil {
		t.Fatal("a server without password or cookie was created")
	}
}

// TestSlowBodiesDoNotStarve: clients that authenticate and then send
// their bodies slowly (or never) do not hold the request slots: every
// slot taken that way, getblockcount still answers at once. Paths other
// than / are 404, as in Core.
func TestSlowBodiesDoNotStarve(t *testing.T) {
	addr, srv := serve(t, rpc.Config{Backend: stub{}, User: "u", Pass: "p", MaxConcurrent: 4})
	_ = srv
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	for range 16 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 100\r\n\r\n{", auth)
	}
	time.Sleep(100 * time.Millisecond) // let the handlers start reading
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/", strings.NewReader(`{"method":"getblockcount","id":1}`))
	req.SetBasicAuth("u", "p")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("getblockcount while slow clients hold their bodies: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("getblockcount: %d", resp.StatusCode)
	}
	for _, path := range []string{"/wallet/x", "/x", "/rest/chaininfo.json"} {
		if r := postPath(t, addr, path); r != 404 {
			t.Errorf("%s: %d, want 404", path, r)
		}
	}
}

func postPath(t *testing.T, addr, path string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(`{"method":"getblockcount"}`))
	req.SetBasicAuth("u", "p")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCookieWriteFailure: a cookie that cannot be written leaves no
// temporary file behind.
func TestCookieWriteFailure(t *testing.T) {
	dir := t.TempDir()
	cookie := filepath.Join(dir, ".cookie")
	// A non-empty directory where the cookie goes: the rename fails.
	if err := os.MkdirAll(filepath.Join(cookie, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.New(rpc.Config{Backend: stub{}, CookiePath: cookie}); err == nil {
		t.Fatal("cookie written over a directory")
	}
	if _, err := os.Stat(cookie + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary cookie left behind: %v", err)
	}
}

// TestCookiePerms: as Core's -rpccookieperms, the cookie may be made
// readable by its group (set to another service's, e.g. Tor's for
// ncprop279) or by all; by default only its owner reads it.
func TestCookiePerms(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		gid  int
		want os.FileMode
	}{{0, -1, 0o600}, {0o640, -1, 0o640}, {0o644, -1, 0o644}, {0o640, 4242, 0o640}} {
		if c.gid > 0 && os.Geteuid() != 0 {
			continue // only root may give a file to any group
		}
		cookie := filepath.Join(t.TempDir(), ".cookie")
		s, err := rpc.New(rpc.Config{Backend: stub{}, CookiePath: cookie, CookieMode: c.mode, CookieGID: c.gid})
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(cookie)
		if err != nil || st.Mode().Perm() != c.want {
			t.Errorf("mode %o: %v %v", c.mode, st.Mode(), err)
		}
		if gid := int(st.Sys().(*syscall.Stat_t).Gid); c.gid > 0 && gid != c.gid {
			t.Errorf("group %d, want %d", gid, c.gid)
		}
		s.Close()
	}
}
