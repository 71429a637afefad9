package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/tor"
)

// fakeNamecoind answers getblockcount, getblockhash and getblockheader
// from a generated chain, batched, as Namecoin Core does.
func fakeNamecoind(t *testing.T, g *chaingen.Generator) *httptest.Server {
	work := make([]*big.Int, len(g.Blocks))
	acc := new(big.Int)
	for i, b := range g.Blocks {
		acc.Add(acc, headers.CalcWork(b.Info.Bits))
		work[i] = new(big.Int).Set(acc)
	}
	byHash := map[string]int{}
	for i, b := range g.Blocks {
		byHash[b.Hash.String()] = i
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "core" || p != "secret" {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		var reqs []struct {
			ID     int               `json:"id"`
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&reqs)
		out := make([]map[string]any, len(reqs))
		for i, q := range reqs {
			var res any
			switch q.Method {
			case "getblockcount":
				res = len(g.Blocks) - 1
			case "getblockhash":
				var h int
				json.Unmarshal(q.Params[0], &h)
				res = g.Blocks[h].Hash.String()
			case "getblockheader":
				var hs string
				json.Unmarshal(q.Params[0], &hs)
				b := g.Blocks[byHash[hs]]
				res = map[string]any{"hash": hs, "height": b.Height, "time": b.Info.Time,
					"bits": fmt.Sprintf("%08x", b.Info.Bits), "chainwork": fmt.Sprintf("%064x", work[b.Height])}
			}
			out[i] = map[string]any{"id": q.ID, "result": res, "error": nil}
		}
		json.NewEncoder(w).Encode(out)
	}))
}

// TestCheckpointGenerator builds a checkpoint from a fake namecoind and
// checks it against the chain: the root is the cp_height root ElectrumX
// computes, and a store anchored on it syncs the rest of the chain.
func TestCheckpointGenerator(t *testing.T) {
	p := &headers.RegTestParams
	g := chaingen.New(p, 12)
	g.MinCoinbase, g.MaxCoinbase = 200, 300
	g.Chain(2200)
	core := fakeNamecoind(t, g)
	defer core.Close()

	cj, err := buildCheckpoint(context.Background(), &coreClient{url: core.URL, user: "core", pass: "secret"}, 2100, 300)
	if err != nil {
		t.Fatal(err)
	}
	if cj.LastHeight != 2015 || cj.LastHash != g.Blocks[2015].Hash.String() || cj.FirstTimestamp != g.Blocks[2015].Info.Time ||
		cj.LastBits != g.Blocks[2016].Info.Bits {
		t.Fatalf("checkpoint %+v", cj)
	}
	var hashes []chainhash.Hash
	for _, b := range g.Blocks[:2101] {
		hashes = append(hashes, b.Hash)
	}
	if cj.MerkleRoot != headers.MerkleRoot(hashes).String() {
		t.Fatal("merkle root is not the cp_height root")
	}
	work, _ := new(big.Int).SetString(cj.LastChainwork, 10)
	root, _ := chainhash.NewHashFromStr(cj.MerkleRoot)
	lastHash, _ := chainhash.NewHashFromStr(cj.LastHash)
	cp := checkpoints.Checkpoint{Height: cj.Height, MerkleRoot: *root, PeriodEnd: cj.LastHeight,
		PeriodEndHash: *lastHash, PeriodEndTime: cj.FirstTimestamp, NextBits: cj.LastBits, ChainWork: work}

	// ElectrumX's proof for a header below the checkpoint verifies.
	srv, err := electrumxtest.NewServer(electrumxtest.FromChain(g), electrumxtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := electrumx.Dial(context.Background(), srv.Address(), electrumx.Config{Dial: electrumx.DialFunc(tor.Direct.Dialer(tor.Fresh()))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hp, err := c.BlockHeader(context.Background(), 1234, cj.Height)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.VerifyHeaderProof(1234, chainhash.DoubleHashH(hp.Header), hp.Branch, hp.Root); err != nil {
		t.Fatalf("proof against the generated checkpoint: %v", err)
	}
	// A store anchored on it verifies and stores the chain above it.
	store, err := headers.OpenStore(filepath.Join(t.TempDir(), "h.db"), p, cp.Anchor(), headers.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// The median time past of the first blocks after the anchor needs the
	// 10 blocks below it: each proven against the generated checkpoint.
	var ancestors []headers.Header
	for h := cj.LastHeight - 10; h <= cj.LastHeight; h++ {
		hp, err := c.BlockHeader(context.Background(), h, cj.Height)
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.VerifyHeaderProof(h, chainhash.DoubleHashH(hp.Header), hp.Branch, hp.Root); err != nil {
			t.Fatalf("proof of ancestor %d: %v", h, err)
		}
		hdr, _ := headers.ParseHeader(hp.Header)
		ancestors = append(ancestors, hdr)
	}
	if err := store.AddAncestors(ancestors); err != nil {
		t.Fatal(err)
	}
	var fhs []*headers.FullHeader
	for _, b := range g.Blocks[2016:] {
		fh, _, _ := headers.ParseFullHeader(b.Raw)
		fhs = append(fhs, fh)
	}
	if err := store.AddHeaders(2016, fhs, time.Unix(int64(g.Tip().Info.Time)+60, 0)); err != nil {
		t.Fatalf("sync from the generated checkpoint: %v", err)
	}
	if store.Tip().Hash != g.Tip().Hash {
		t.Fatal("wrong tip")
	}
	if _, err := buildCheckpoint(context.Background(), &coreClient{url: core.URL, user: "core", pass: "wrong"}, 2100, 300); err == nil {
		t.Fatal("wrong namecoind password accepted")
	}
	if _, err := buildCheckpoint(context.Background(), &coreClient{url: core.URL, user: "core", pass: "secret"}, 5000, 300); err == nil {
		t.Fatal("a height above the tip accepted")
	}
}
