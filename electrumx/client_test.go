package electrumx_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// simpleTx is a small valid transaction distinguished by tag.
func simpleTx(tag uint32) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, 2)
	tx = append(tx, 1)
	prev := chainhash.DoubleHashH(binary.LittleEndian.AppendUint32(nil, tag))
	tx = append(tx, prev[:]...)
	tx = binary.LittleEndian.AppendUint32(tx, 0)
	tx = append(tx, 0, 0xff, 0xff, 0xff, 0xff)
	tx = append(tx, 1)
	tx = binary.LittleEndian.AppendUint64(tx, uint64(tag))
	tx = append(tx, 1, 0x51)
	return binary.LittleEndian.AppendUint32(tx, 0)
}

type fixture struct {
	g       *chaingen.Generator
	backend *electrumxtest.Backend
	srv     *electrumxtest.Server
	// someTx is a transaction in block txHeight.
	someTx   chainhash.Hash
	txHeight int32
}

func newFixture(t *testing.T, o electrumxtest.Options) *fixture {
	t.Helper()
	g := chaingen.New(&headers.RegTestParams, 3)
	g.Chain(40)
	var txs [][]byte
	for i := uint32(0); i < 5; i++ {
		txs = append(txs, simpleTx(i))
	}
	blk := g.Next(chaingen.Spec{Txs: txs})
	g.Chain(9)
	b := electrumxtest.FromChain(g)
	tx, _, _ := headers.ParseTx(txs[3])
	f := &fixture{g: g, backend: b, someTx: tx.TxID(), txHeight: blk.Height}
	b.AddHistory(strings.Repeat("ab", 32), electrumxtest.HistoryEntry{TxHash: f.someTx, Height: blk.Height})
	srv, err := electrumxtest.NewServer(b, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

func directDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// dialAs reaches real whatever address is dialled: another server (a new
// certificate) at the address a test keeps using.
func dialAs(real electrumx.Server) electrumx.DialFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return directDial(ctx, network, real.Addr())
	}
}

func (f *fixture) dial(t *testing.T) *electrumx.Client {
	t.Helper()
	pins, err := electrumx.OpenPinStore(filepath.Join(t.TempDir(), "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := electrumx.Dial(ctx, f.srv.Address(), electrumx.Config{Dial: directDial, Pins: pins})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMethods calls every method over TCP and TLS and checks each answer
// against what the fake server serves.
func TestMethods(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			f := newFixture(t, electrumxtest.Options{TLS: useTLS, Pad: true})
			c := f.dial(t)
			ctx := ctx5(t)
			if c.Protocol() != "1.4.3" || !c.HasValueProof() {
				t.Fatalf("negotiated %q", c.Protocol())
			}
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}

			tip, notes, err := c.SubscribeHeaders(ctx)
			if err != nil || tip.Height != 50 || !bytes.Equal(tip.Hex, f.g.Blocks[50].Raw) {
				t.Fatalf("subscribe: %v height %d", err, tip.Height)
			}
			next := f.g.Next(chaingen.Spec{})
			f.backend.AddBlocks(next)
			f.srv.NotifyTip()
			select {
			case n := <-notes:
				if n.Height != 51 || !bytes.Equal(n.Hex, next.Raw) {
					t.Fatalf("notification %d", n.Height)
				}
			case <-ctx.Done():
				t.Fatal("no header notification")
			}

			h, err := c.BlockHeader(ctx, 7, 0)
			if err != nil || !bytes.Equal(h.Header, f.g.Blocks[7].Raw) {
				t.Fatalf("block.header: %v", err)
			}
			hp, err := c.BlockHeader(ctx, 7, 30)
			if err != nil || len(hp.Header) != 80 || len(hp.Branch) != 5 {
				t.Fatalf("block.header with cp: %v %+v", err, hp)
			}
			hash := chainhash.DoubleHashH(hp.Header)
			if headers.MerkleBranchRoot(hash, hp.Branch, 7) != hp.Root {
				t.Fatal("cp proof does not fold to its root")
			}

			hs, err := c.BlockHeaders(ctx, 1, 20, 0)
			if err != nil || hs.Count != 20 || !bytes.Equal(hs.Raw, f.g.Joined(1, 20)) {
				t.Fatalf("block.headers: %v", err)
			}
			ht, err := c.BlockHeaders(ctx, 10, 5, 30)
			if err != nil || len(ht.Raw) != 400 || hs.Max != 2016 {
				t.Fatalf("truncated headers: %v %d", err, len(ht.Raw))
			}

			hist, err := c.GetHistory(ctx, strings.Repeat("ab", 32))
			if err != nil || len(hist) != 1 || chainhash.Hash(hist[0].TxHash) != f.someTx || hist[0].Height != f.txHeight {
				t.Fatalf("history: %v %+v", err, hist)
			}
			raw, err := c.GetTransaction(ctx, f.someTx)
			if err != nil || !bytes.Equal(raw, simpleTx(3)) {
				t.Fatalf("transaction.get: %v", err)
			}
			mp, err := c.GetMerkle(ctx, f.someTx, f.txHeight)
			if err != nil || mp.Pos != 4 || mp.BlockHeight != f.txHeight {
				t.Fatalf("get_merkle: %v %+v", err, mp)
			}
			if got := headers.MerkleBranchRoot(f.someTx, mp.Merkle, uint32(mp.Pos)); got != f.g.Blocks[f.txHeight].Header.MerkleRoot {
				t.Fatal("merkle proof does not lead to the block's merkle root")
			}
			vp, err := c.NameGetValueProof(ctx, strings.Repeat("ab", 32), 0)
			if err != nil || len(vp) != 1 || !bytes.Equal(vp[0].Tx, simpleTx(3)) || vp[0].Merkle.Pos != 4 {
				t.Fatalf("get_value_proof: %v %+v", err, vp)
			}
			vpc, err := c.NameGetValueProof(ctx, strings.Repeat("ab", 32), 48)
			if err != nil || len(vpc) != 1 || vpc[0].Header == nil || len(vpc[0].Header.Header) != 80 {
				t.Fatalf("get_value_proof with cp: %v", err)
			}
		})
	}
}

func TestBatchAndErrors(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	c := f.dial(t)
	var raw electrumx.HexBytes
	var mp struct {
		Pos int `json:"pos"`
	}
	var hdr electrumx.HexBytes
	calls := []*electrumx.BatchCall{
		{Method: "blockchain.transaction.get", Params: []any{f.someTx.String()}, Result: &raw},
		{Method: "blockchain.transaction.get_merkle", Params: []any{f.someTx.String(), f.txHeight}, Result: &mp},
		{Method: "blockchain.block.header", Params: []any{f.txHeight}, Result: &hdr},
		{Method: "blockchain.transaction.get", Params: []any{strings.Repeat("00", 32)}},
		{Method: "no.such.method"},
	}
	before := f.srv.Requests("")
	if err := c.Batch(ctx5(t), calls); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, simpleTx(3)) || mp.Pos != 4 || !bytes.Equal(hdr, f.g.Blocks[f.txHeight].Raw) {
		t.Fatal("batch results wrong")
	}
	for i := 0; i < 3; i++ {
		if calls[i].Err != nil {
			t.Fatalf("call %d: %v", i, calls[i].Err)
		}
	}
	var rerr *electrumx.RPCError
	if !errors.As(calls[3].Err, &rerr) || rerr.Code != 2 {
		t.Fatalf("missing tx: %v", calls[3].Err)
	}
	if !errors.As(calls[4].Err, &rerr) || rerr.Code != -32601 {
		t.Fatalf("unknown method: %v", calls[4].Err)
	}
	if got := f.srv.Requests("") - before; got != 5 {
		t.Fatalf("batch sent %d requests", got)
	}
}

// TestOutOfOrder: a slow first reply is overtaken by a fast second one;
// each call still gets its own answer.
func TestOutOfOrder(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	c := f.dial(t)
	f.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.header" && string(r.Params[0]) == "5" {
			return &electrumxtest.Action{Delay: 300 * time.Millisecond}
		}
		return nil
	})
	ctx := ctx5(t)
	slow := make(chan error, 1)
	var slowHdr *electrumx.HeaderProof
	go func() {
		var err error
		slowHdr, err = c.BlockHeader(ctx, 5, 0)
		slow <- err
	}()
	time.Sleep(50 * time.Millisecond)
	fast, err := c.BlockHeader(ctx, 6, 0)
	if err != nil || !bytes.Equal(fast.Header, f.g.Blocks[6].Raw) {
		t.Fatalf("fast call: %v", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("slow call finished first: %v", err)
	default:
	}
	if err := <-slow; err != nil || !bytes.Equal(slowHdr.Header, f.g.Blocks[5].Raw) {
		t.Fatalf("slow call: %v", err)
	}
}

// TestCancelledCallDoesNotLeak cancels calls the server never answers and
// checks that no goroutine is left behind and the connection still works.
func TestCancelledCallDoesNotLeak(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	c := f.dial(t)
	f.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "server.ping" {
			return &electrumxtest.Action{NoReply: true}
		}
		return nil
	})
	base := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		err := c.Ping(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want deadline, got %v", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("%d goroutines after cancelled calls, %d before", n, base)
	}
	if _, err := c.BlockHeader(ctx5(t), 1, 0); err != nil {
		t.Fatalf("connection unusable after cancellations: %v", err)
	}
}

// TestLiarsAndGarbage: every way a server can misbehave ends in a clear
// error on that call, never a crash or a hang.
func TestLiarsAndGarbage(t *testing.T) {
	cases := []struct {
		name   string
		action electrumxtest.Action
		want   error
	}{
		{"garbage line", electrumxtest.Action{Raw: []byte("HTTP/1.1 400 Bad Request")}, electrumx.ErrProtocol},
		{"oversized reply", electrumxtest.Action{Oversize: 2 << 20}, electrumx.ErrReplyTooLarge},
		{"endless reply", electrumxtest.Action{Endless: true}, electrumx.ErrReplyTooLarge},
		{"slow reply", electrumxtest.Action{Delay: 2 * time.Second}, context.DeadlineExceeded},
		{"hang up", electrumxtest.Action{Close: true}, electrumx.ErrClosed},
		{"wrong result shape", electrumxtest.Action{Result: map[string]int{"x": 1}}, electrumx.ErrBadReply},
		{"short hash in hex", electrumxtest.Action{Result: "abc"}, electrumx.ErrBadReply},
		{"error object", electrumxtest.Action{Error: &electrumx.RPCError{Code: 1, Message: "height 100,000 out of range"}}, &electrumx.RPCError{}},
		{"id null error", electrumxtest.Action{Raw: []byte(`{"jsonrpc":"2.0","error":{"code":-32700,"message":"invalid JSON"},"id":null}`)}, electrumx.ErrProtocol},
		{"reply without result", electrumxtest.Action{Raw: []byte(`{"jsonrpc":"2.0","id":2}`)}, electrumx.ErrBadReply},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, electrumxtest.Options{})
			pins, _ := electrumx.OpenPinStore("")
			ctx := ctx5(t)
			cl, err := electrumx.Dial(ctx, f.srv.Address(), electrumx.Config{Dial: directDial, Pins: pins, MaxLine: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			act := c.action
			f.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
				if r.Method == "blockchain.transaction.get" {
					return &act
				}
				return nil
			})
			callCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = cl.GetTransaction(callCtx, f.someTx)
			if err == nil {
				t.Fatal("misbehaviour accepted")
			}
			var rerr *electrumx.RPCError
			if target, ok := c.want.(*electrumx.RPCError); ok && target != nil {
				if !errors.As(err, &rerr) {
					t.Fatalf("want RPCError, got %v", err)
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
			t.Logf("%s: %v", c.name, err)
			// A broken connection fails the next call at once.
			if cl.Err() != nil {
				if err := cl.Ping(ctx); err == nil {
					t.Fatal("call on a broken connection succeeded")
				}
			}
		})
	}
}

func TestProtocolNegotiation(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{MaxProtocol: "1.4.2"})
	c := f.dial(t)
	if c.Protocol() != "1.4.2" || c.HasValueProof() {
		t.Fatalf("protocol %q", c.Protocol())
	}
	if _, err := c.NameGetValueProof(ctx5(t), strings.Repeat("ab", 32), 0); !errors.Is(err, electrumx.ErrNotSupported) {
		t.Fatalf("value proof on 1.4.2: %v", err)
	}
	old := newFixture(t, electrumxtest.Options{MaxProtocol: "1.4"})
	_, err := electrumx.Dial(ctx5(t), old.srv.Address(), electrumx.Config{Dial: directDial})
	var rerr *electrumx.RPCError
	if !errors.As(err, &rerr) {
		t.Fatalf("server without 1.4.1: %v", err)
	}
	liar := newFixture(t, electrumxtest.Options{})
	liar.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "server.version" {
			return &electrumxtest.Action{Result: []string{"ElectrumX", "1.7"}}
		}
		return nil
	})
	if _, err := electrumx.Dial(ctx5(t), liar.srv.Address(), electrumx.Config{Dial: directDial}); !errors.Is(err, electrumx.ErrUnsupportedProtocol) {
		t.Fatalf("server claiming 1.7: %v", err)
	}
}

// TestTLSPinning pins a certificate on first use, refuses a changed one
// with a message that says how to re-pin, and re-pins after Forget.
func TestTLSPinning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	pins, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, electrumxtest.Options{TLS: true})
	c, err := electrumx.Dial(ctx5(t), f.srv.Address(), electrumx.Config{Dial: directDial, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The same address now presents another certificate.
	addr := f.srv.Address()
	f.srv.Close()
	other := newFixture(t, electrumxtest.Options{TLS: true})
	impostor := dialAs(other.srv.Address())
	reloaded, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: impostor, Pins: reloaded})
	if !errors.Is(err, electrumx.ErrCertificateChanged) {
		t.Fatalf("changed certificate: %v", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), addr.Addr()) {
		t.Fatalf("error does not say how to re-pin: %v", err)
	}
	if err := reloaded.Forget(addr); err != nil {
		t.Fatal(err)
	}
	c, err = electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: impostor, Pins: reloaded})
	if err != nil {
		t.Fatalf("after forget: %v", err)
	}
	c.Close()
	if _, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: directDial}); err == nil {
		t.Fatal("TLS without a pin store accepted")
	}
}

// TestTLSCASigned: a server whose certificate an authority vouches for is
// pinned as CA-signed, so a renewed certificate is accepted; one that is
// then self-signed is refused, with the way to re-pin.
func TestTLSCASigned(t *testing.T) {
	ca, err := electrumxtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(cert *tls.Certificate) electrumx.Server {
		f := newFixture(t, electrumxtest.Options{TLS: true, Certificate: cert})
		return f.srv.Address()
	}
	first, err := ca.Issue()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(first)
	path := filepath.Join(t.TempDir(), "pins.json")
	pins, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	pins.Roots = ca.Pool()
	c, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: directDial, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"`+addr.Addr()+`": "ca"`) {
		t.Fatalf("pins file: %s", b)
	}
	// Reloaded from the file, as after a restart, at the same address.
	reloaded, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	reloaded.Roots = ca.Pool()
	renewed, err := ca.Issue()
	if err != nil {
		t.Fatal(err)
	}
	c, err = electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: dialAs(serve(renewed)), Pins: reloaded})
	if err != nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	c.Close()
	_, err = electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: dialAs(serve(nil)), Pins: reloaded})
	if !errors.Is(err, electrumx.ErrCertificateChanged) || !strings.Contains(err.Error(), "certificate authority") ||
		!strings.Contains(err.Error(), path) {
		t.Fatalf("self-signed after CA-signed: %v", err)
	}
}

// TestPinDeletedWhileRunning: deleting a server's entry from the pins file,
// as a refusal says to, works while ncspv runs: the next connection pins
// the new certificate, and saving another server's pin does not bring the
// deleted entry back.
func TestPinDeletedWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	pins, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	first := newFixture(t, electrumxtest.Options{TLS: true})
	addr := first.srv.Address()
	c, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: directDial, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	replaced := newFixture(t, electrumxtest.Options{TLS: true})
	if _, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: dialAs(replaced.srv.Address()), Pins: pins}); !errors.Is(err, electrumx.ErrCertificateChanged) {
		t.Fatalf("replaced certificate: %v", err)
	}
	// The user deletes the entry by hand; the store stays open.
	if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: dialAs(replaced.srv.Address()), Pins: pins})
	if err != nil {
		t.Fatalf("after the entry was deleted: %v", err)
	}
	c.Close()
	other := newFixture(t, electrumxtest.Options{TLS: true})
	c, err = electrumx.Dial(ctx5(t), other.srv.Address(), electrumx.Config{Dial: directDial, Pins: pins})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	reloaded, err := electrumx.OpenPinStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: dialAs(replaced.srv.Address()), Pins: reloaded}); err != nil {
		t.Fatalf("the new pin was not kept: %v", err)
	}
	// A pins file broken by hand is reported as such.
	if err := os.WriteFile(path, []byte("{,"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := electrumx.Dial(ctx5(t), addr, electrumx.Config{Dial: directDial, Pins: pins}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("broken pins file: %v", err)
	}
}

func TestParseServer(t *testing.T) {
	good := map[string]string{
		"tcp://example.com:50001":      "tcp://example.com:50001",
		"ssl://example.com:50002":      "ssl://example.com:50002",
		"example.com:50002:s":          "ssl://example.com:50002",
		"example.com:50001:t":          "tcp://example.com:50001",
		"ssl://[2001:db8::1]:50002":    "ssl://[2001:db8::1]:50002",
		" ssl://abc.onion:50002 ":      "ssl://abc.onion:50002",
		"tls://nmc2.bitcoins.sk:57002": "ssl://nmc2.bitcoins.sk:57002",
	}
	for in, want := range good {
		s, err := electrumx.ParseServer(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseServer(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "example.com", "http://x:1", "tcp://x", "tcp://x:0", "tcp://x:70000", "x:1:q", "tcp://:5"} {
		if _, err := electrumx.ParseServer(bad); err == nil {
			t.Errorf("ParseServer(%q) accepted", bad)
		}
	}
	for _, s := range electrumx.DefaultServers() {
		if !s.TLS || s.Port == 0 {
			t.Errorf("default server %v", s)
		}
	}
}

func TestPool(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	pins, _ := electrumx.OpenPinStore("")
	p := electrumx.NewPool(electrumx.Config{Pins: pins})
	defer p.Close()
	ctx := ctx5(t)
	a1, err := p.Get(ctx, f.srv.Address(), "a", directDial)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := p.Get(ctx, f.srv.Address(), "a", directDial)
	b1, _ := p.Get(ctx, f.srv.Address(), "b", directDial)
	if a1 != a2 || a1 == b1 || f.srv.Accepted() != 2 {
		t.Fatalf("pool keys: same group shared=%v, groups separate=%v, accepted %d", a1 == a2, a1 != b1, f.srv.Accepted())
	}
	p.Drop(a1)
	a3, _ := p.Get(ctx, f.srv.Address(), "a", directDial)
	if a3 == a1 || a3.Err() != nil {
		t.Fatal("dropped connection handed out again")
	}
	p.IdleTimeout = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	c, _ := p.Get(ctx, f.srv.Address(), "c", directDial)
	if p.Len() != 1 || a3.Err() == nil || c.Err() != nil {
		t.Fatalf("idle connections not closed: %d pooled", p.Len())
	}
}

// TestPoolCap: a flood of isolation groups (stream IDs) never holds more
// than MaxConns connections: the least recently used are closed to make
// room, the newest stay usable.
func TestPoolCap(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	pins, _ := electrumx.OpenPinStore("")
	p := electrumx.NewPool(electrumx.Config{Pins: pins})
	p.MaxConns = 8
	defer p.Close()
	ctx := ctx5(t)
	var clients []*electrumx.Client
	for i := range 50 {
		c, err := p.Get(ctx, f.srv.Address(), fmt.Sprint("stream-", i), directDial)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		if p.Len() > 8 {
			t.Fatalf("%d pooled after %d groups", p.Len(), i+1)
		}
	}
	for i, c := range clients {
		if closed := c.Err() != nil; closed != (i < 42) {
			t.Errorf("connection %d closed %v", i, closed)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.OpenConns() > 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.srv.OpenConns(); n > 8 {
		t.Fatalf("the server still has %d connections open", n)
	}
}

// TestPoolDropWhileDialing: dropping one connection while another key is
// still dialing must not touch the dialing entry (seen by the race
// detector as a daemon dropped its sync connection during a lookup's dial).
func TestPoolDropWhileDialing(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	pins, _ := electrumx.OpenPinStore("")
	p := electrumx.NewPool(electrumx.Config{Pins: pins})
	defer p.Close()
	ctx := ctx5(t)
	a, err := p.Get(ctx, f.srv.Address(), "a", directDial)
	if err != nil {
		t.Fatal(err)
	}
	// The drop runs while "b" dials, unsynchronized with the dial's end,
	// so the race detector sees any access to the dialing entry.
	dialing := make(chan struct{})
	dial := electrumx.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		close(dialing)
		return directDial(ctx, network, addr)
	})
	got := make(chan error, 1)
	go func() {
		_, err := p.Get(ctx, f.srv.Address(), "b", dial)
		got <- err
	}()
	<-dialing
	p.Drop(a)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if p.Len() != 1 || a.Err() == nil {
		t.Fatalf("after the drop: %d pooled, dropped connection error %v", p.Len(), a.Err())
	}
}

func TestHoldSmallRepliesLikeElectrumX120(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{Pad: true, HoldSmall: 50 * time.Millisecond})
	c := f.dial(t)
	ctx := ctx5(t)
	if f.srv.Held() != 0 {
		t.Fatal("replies held before the first KiB was sent")
	}
	// Padding makes the negotiation reply 1 KiB: from now on small
	// replies wait for the timer, large ones do not.
	if _, err := c.BlockHeaders(ctx, 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if f.srv.Held() != 0 {
		t.Fatal("a large reply was held")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if f.srv.Held() == 0 {
		t.Fatal("small replies were not held")
	}
}

// TestStreamedHexReplies: chunk replies are decoded while read; malformed
// ones fail that call clearly, and odd spacing falls back to the generic
// decoder with the same result.
func TestStreamedHexReplies(t *testing.T) {
	prefix := `{"jsonrpc":"2.0","result":{"hex":"`
	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"bad hex digit", prefix + `00zz","count":1,"max":2016},"id":2}`, electrumx.ErrProtocol},
		{"odd-length hex", prefix + `000","count":1,"max":2016},"id":2}`, electrumx.ErrProtocol},
		{"newline inside the hex", prefix + "00\n", electrumx.ErrProtocol},
		{"endless hex", prefix + strings.Repeat("00", 600<<10), electrumx.ErrReplyTooLarge},
		{"second hex member", prefix + `00","hex":"00","count":1},"id":2}`, electrumx.ErrBadReply},
		{"padding past the line limit", prefix + `00","count":1,"max":2016},"id":2` + strings.Repeat(" ", 2<<20) + `}`, electrumx.ErrReplyTooLarge},
		{"blanks between members", prefix + "00\",  \"count\":1\t,\r\"max\":2016 },\"id\":2" + strings.Repeat(" ", 900<<10) + "}", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, electrumxtest.Options{})
			cl, err := electrumx.Dial(ctx5(t), f.srv.Address(), electrumx.Config{Dial: directDial, MaxLine: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			raw := c.raw
			f.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
				if r.Method == "blockchain.block.headers" {
					return &electrumxtest.Action{Raw: []byte(raw)}
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(ctx5(t), 2*time.Second)
			defer cancel()
			_, err = cl.BlockHeaders(ctx, 1, 1, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// Spaces after the colons (another JSON writer): the generic path.
	f := newFixture(t, electrumxtest.Options{Pad: true})
	cl := f.dial(t)
	want := f.g.Blocks[1].Raw
	f.srv.SetHook(func(r electrumxtest.Request) *electrumxtest.Action {
		if r.Method == "blockchain.block.headers" {
			return &electrumxtest.Action{Raw: []byte(fmt.Sprintf(`{"jsonrpc": "2.0", "result": {"hex": "%x", "count": 1, "max": 2016}, "id": 2}`, want))}
		}
		return nil
	})
	r, err := cl.BlockHeaders(ctx5(t), 1, 1, 0)
	if err != nil || !bytes.Equal(r.Raw, want) || r.Count != 1 {
		t.Fatalf("generic path: %v", err)
	}
}

// TestPoolSpares: a group seen for the first time takes a spare (its dial
// function is not called), each spare goes to one group only, the spares
// are refilled only when GetNew is called, and idle ones are closed.
func TestPoolSpares(t *testing.T) {
	f := newFixture(t, electrumxtest.Options{})
	pins, _ := electrumx.OpenPinStore("")
	p := electrumx.NewPool(electrumx.Config{Pins: pins})
	defer p.Close()
	var spareDials, groupDials atomic.Int32
	p.Spares = 2
	p.SpareDial = func() electrumx.DialFunc {
		spareDials.Add(1)
		return directDial
	}
	counted := func(ctx context.Context, network, addr string) (net.Conn, error) {
		groupDials.Add(1)
		return directDial(ctx, network, addr)
	}
	ctx := ctx5(t)
	srv := f.srv.Address()
	s1, err := p.GetNew(ctx, srv, "s1", counted)
	if err != nil || groupDials.Load() != 1 {
		t.Fatalf("first group, no spare yet: %v, %d dials", err, groupDials.Load())
	}
	waitFor(t, func() bool { return p.SpareCount(srv) == 2 })
	s2, _ := p.GetNew(ctx, srv, "s2", counted)
	s3, _ := p.GetNew(ctx, srv, "s3", counted)
	if groupDials.Load() != 1 {
		t.Fatalf("groups with spares ready dialed %d times", groupDials.Load()-1)
	}
	if s2 == nil || s3 == nil || s2 == s3 || s2 == s1 || s3 == s1 {
		t.Fatal("a spare handed to two groups")
	}
	if again, _ := p.GetNew(ctx, srv, "s2", counted); again != s2 {
		t.Fatal("a group's connection changed")
	}
	waitFor(t, func() bool { return p.SpareCount(srv) == 2 })
	dials := spareDials.Load()
	// Idle: the spares close and no new one is dialed.
	p.IdleTimeout = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	p.Get(ctx, srv, "s1", counted) // runs the sweep
	if n := p.SpareCount(srv); n != 0 {
		t.Fatalf("%d idle spares kept", n)
	}
	time.Sleep(50 * time.Millisecond)
	if spareDials.Load() != dials {
		t.Fatal("spares dialed while nothing called GetNew")
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
