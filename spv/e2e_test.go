package spv_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
)

// nameUpdate is what the generator knows about one name transaction.
type nameUpdate struct {
	name, value []byte
	pkh         [20]byte
	vout        uint32
	height      int32
	txid        chainhash.Hash
	raw         []byte
}

// namedChain is a regtest chain with name operations at known heights.
type namedChain struct {
	g       *chaingen.Generator
	updates map[string][]nameUpdate // by name, oldest first
}

var (
	hexName  = []byte{0x00, 0x01, 0xfe, 0xff, 'x'}
	utf8Name = []byte("d/ünïcode")
)

// buildNamedChain: tip 50 with conf 3 in mind, regtest expiry 30.
//
//	8  d/expiring firstupdate (expired at 50)
//	25 d/ascii firstupdate, d/ünïcode firstupdate, hex name firstupdate
//	26 d/fresh firstupdate
//	30 d/ascii update (vout 2)
//	49 d/fresh update (only 2 confirmations at 50: too fresh)
func buildNamedChain(seed uint64) *namedChain {
	nc := &namedChain{g: chaingen.New(&headers.RegTestParams, seed), updates: map[string][]nameUpdate{}}
	plan := map[int32][]nameUpdate{
		8:  {{name: []byte("d/expiring"), value: []byte(`{"ip":"10.9.9.9"}`), pkh: [20]byte{8}}},
		25: {{name: []byte("d/ascii"), value: []byte(`{"ip":"10.0.0.1"}`), pkh: [20]byte{1}}, {name: utf8Name, value: []byte("héllo wörld"), pkh: [20]byte{2}, vout: 1}, {name: hexName, value: []byte{0xde, 0xad, 0xbe, 0xef, 0x00}, pkh: [20]byte{3}}},
		26: {{name: []byte("d/fresh"), value: []byte("v1"), pkh: [20]byte{4}}},
		30: {{name: []byte("d/ascii"), value: []byte(`{"ip":"10.0.0.2","tor":"example.onion"}`), pkh: [20]byte{5}, vout: 2}},
		49: {{name: []byte("d/fresh"), value: []byte("v2"), pkh: [20]byte{6}}},
	}
	for h := int32(1); h <= 50; h++ {
		var txs [][]byte
		ups := plan[h]
		for i := range ups {
			u := &ups[i]
			op := byte(chaingen.OpFirstUpdate)
			if len(nc.updates[string(u.name)]) > 0 {
				op = chaingen.OpUpdate
			}
			u.raw = chaingen.NameTx(op, u.name, u.value, u.pkh, int(u.vout), uint64(h)<<8|uint64(i))
			tx, _, _ := headers.ParseTx(u.raw)
			u.txid, u.height = tx.TxID(), h
			txs = append(txs, u.raw)
			nc.updates[string(u.name)] = append(nc.updates[string(u.name)], *u)
		}
		nc.g.Next(chaingen.Spec{Txs: txs})
	}
	return nc
}

func (nc *namedChain) backend() *electrumxtest.Backend {
	b := electrumxtest.FromChain(nc.g)
	b.IndexNames()
	return b
}

func startServer(t *testing.T, b *electrumxtest.Backend, proto string) *electrumxtest.Server {
	t.Helper()
	srv, err := electrumxtest.NewServer(b, electrumxtest.Options{MaxProtocol: proto, Pad: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func syncEngine(t *testing.T, e *spv.Engine) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := e.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return ctx
}

// checkResult compares every name_show field with what the generator
// knows.
func checkResult(t *testing.T, got *spv.NameResult, want nameUpdate, tip int32) {
	t.Helper()
	addr := spv.ScriptAddress(chaingen.P2PKH(want.pkh), spv.RegTestAddresses)
	exp := want.height + 30 - tip
	if string(got.Name) != string(want.name) || string(got.Value) != string(want.value) ||
		got.TxID != want.txid || got.Vout != want.vout || got.Address != addr ||
		got.Height != want.height || got.ExpiresIn != exp || got.Expired != (exp <= 0) {
		t.Fatalf("%q: got %+v\nwant value %q txid %v vout %d address %s height %d expires_in %d",
			want.name, got, want.value, want.txid, want.vout, addr, want.height, exp)
	}
}

// TestNameShowEndToEnd syncs a generated chain from a fake server and
// checks every field of name_show for ascii, utf8 and hex names and values,
// freshness fallback, expiry and never-existed, over both protocols and
// with one or two servers.
func TestNameShowEndToEnd(t *testing.T) {
	nc := buildNamedChain(21)
	for _, proto := range []string{"1.4.3", "1.4.2"} {
		for _, k := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/k=%d", proto, k), func(t *testing.T) {
				var servers []electrumx.Server
				for i := 0; i < k; i++ {
					servers = append(servers, startServer(t, nc.backend(), proto).Address())
				}
				e, store := newEngine(t, &headers.RegTestParams, servers, 3, k)
				defer e.Close()
				ctx := syncEngine(t, e)
				tip := store.Tip().Height
				if tip != 50 {
					t.Fatalf("tip %d", tip)
				}
				last := func(n string) nameUpdate { u := nc.updates[n]; return u[len(u)-1] }

				for _, n := range []string{"d/ascii", string(utf8Name), string(hexName)} {
					r, err := e.NameShow(ctx, []byte(n), spv.LookupOptions{StreamID: "tab-1"})
					if err != nil {
						t.Fatalf("%q: %v", n, err)
					}
					checkResult(t, r, last(n), tip)
				}
				// Too fresh (2 confirmations of 3): the older update.
				r, err := e.NameShow(ctx, []byte("d/fresh"), spv.LookupOptions{StreamID: "tab-1"})
				if err != nil {
					t.Fatal(err)
				}
				checkResult(t, r, nc.updates["d/fresh"][0], tip)

				_, err = e.NameShow(ctx, []byte("d/expiring"), spv.LookupOptions{})
				var ne *spv.NameError
				if !errors.As(err, &ne) || ne.Kind != spv.NameExpired || err.Error() != "name expired: 'd/expiring'" {
					t.Fatalf("expired name: %v", err)
				}
				r, err = e.NameShow(ctx, []byte("d/expiring"), spv.LookupOptions{AllowExpired: true})
				if err != nil || !r.Expired || r.ExpiresIn != 8+30-50 {
					t.Fatalf("allowExpired: %+v %v", r, err)
				}
				_, err = e.NameShow(ctx, []byte("d/never"), spv.LookupOptions{})
				if !errors.As(err, &ne) || ne.Kind != spv.NameNeverExisted || err.Error() != "name never existed: 'd/never'" {
					t.Fatalf("never existed: %v", err)
				}
				_, err = e.NameShow(ctx, hexName[:2], spv.LookupOptions{})
				if err == nil || err.Error() != "name never existed: 0x0001" {
					t.Fatalf("non-ascii name in message: %v", err)
				}
			})
		}
	}
}

// TestEncodings renders results in each encoding as Core does.
func TestEncodings(t *testing.T) {
	nc := buildNamedChain(22)
	e, _ := newEngine(t, &headers.RegTestParams, []electrumx.Server{startServer(t, nc.backend(), "1.4.3").Address()}, 3, 1)
	defer e.Close()
	ctx := syncEngine(t, e)

	r, err := e.NameShow(ctx, utf8Name, spv.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := r.JSON(spv.EncodingASCII, spv.EncodingASCII)
	if j.Name != nil || *j.NameError != "invalid data for ascii" || j.Value != nil || *j.ValueError != "invalid data for ascii" {
		t.Fatalf("ascii of utf8 data: %+v", j)
	}
	j = r.JSON(spv.EncodingUTF8, spv.EncodingUTF8)
	if *j.Name != "d/ünïcode" || *j.Value != "héllo wörld" || j.NameError != nil {
		t.Fatalf("utf8: %+v", j)
	}
	r, err = e.NameShow(ctx, hexName, spv.LookupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j = r.JSON(spv.EncodingHex, spv.EncodingHex)
	if *j.Name != spv.JSONText(hex.EncodeToString(hexName)) || *j.Value != "deadbeef00" {
		t.Fatalf("hex: %+v", j)
	}
	if j = r.JSON(spv.EncodingUTF8, spv.EncodingUTF8); j.ValueError == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}
