package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

// checkpointCommand builds a checkpoint from a trusted Namecoin Core, for
// release managers: the period end, its hash, time, the next period's
// bits, the chain work, and the cp_height merkle root over every block
// hash 0..height.
type checkpointCommand struct {
	Namecoind string `long:"namecoind" required:"true" description:"Namecoin Core RPC URL, e.g. http://127.0.0.1:8336/"`
	User      string `long:"namecoind-user" description:"Namecoin Core RPC user"`
	Pass      string `long:"namecoind-pass" description:"Namecoin Core RPC password"`
	Height    int32  `long:"height" description:"cp_height (default: 100 blocks below the tip)"`
	Batch     int    `long:"batch" default:"1000" description:"getblockhash calls per JSON-RPC batch"`
}

// checkpointJSON is the generator's output, in Electrum-NMC 4.0.6's field
// names plus the period end's height.
type checkpointJSON struct {
	Height         int32  `json:"height"`
	MerkleRoot     string `json:"merkle_root"`
	LastHeight     int32  `json:"last_height"`
	LastHash       string `json:"last_hash"`
	LastBits       uint32 `json:"last_bits"`
	FirstTimestamp uint32 `json:"first_timestamp"`
	LastChainwork  string `json:"last_chainwork"`
}

func (c *checkpointCommand) Execute([]string) error {
	ctx := context.Background()
	cp, err := buildCheckpoint(ctx, &coreClient{url: c.Namecoind, user: c.User, pass: c.Pass}, c.Height, c.Batch)
	if err != nil {
		return err
	}
	return printJSON(cp)
}

// coreClient is a minimal Namecoin Core JSON-RPC client.
type coreClient struct {
	url, user, pass string
	http            http.Client
}

type coreCall struct {
	method string
	params []any
	out    any
}

func (c *coreClient) batch(ctx context.Context, calls []coreCall) error {
	reqs := make([]map[string]any, len(calls))
	for i, call := range calls {
		reqs[i] = map[string]any{"jsonrpc": "1.0", "id": i, "method": call.method, "params": call.params}
	}
	body, _ := json.Marshal(reqs)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.user != "" || c.pass != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("namecoind: %w", err)
	}
	defer resp.Body.Close()
	var replies []struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&replies); err != nil {
		return fmt.Errorf("namecoind reply (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(replies) != len(calls) {
		return fmt.Errorf("namecoind answered %d of %d calls", len(replies), len(calls))
	}
	for _, r := range replies {
		if r.ID < 0 || r.ID >= len(calls) {
			return fmt.Errorf("namecoind reply with unknown id %d", r.ID)
		}
		if r.Error != nil {
			return fmt.Errorf("namecoind %s: %d %s", calls[r.ID].method, r.Error.Code, r.Error.Message)
		}
		if err := json.Unmarshal(r.Result, calls[r.ID].out); err != nil {
			return fmt.Errorf("namecoind %s: %w", calls[r.ID].method, err)
		}
	}
	return nil
}

type coreHeader struct {
	Hash      string `json:"hash"`
	Height    int32  `json:"height"`
	Time      uint32 `json:"time"`
	Bits      string `json:"bits"`
	Chainwork string `json:"chainwork"`
}

func buildCheckpoint(ctx context.Context, c *coreClient, height int32, batch int) (*checkpointJSON, error) {
	var tip int32
	if err := c.batch(ctx, []coreCall{{"getblockcount", nil, &tip}}); err != nil {
		return nil, err
	}
	if height == 0 {
		height = tip - 100
	}
	period := int32(2016)
	last := (height+1)/period*period - 1
	if height < period-1 || height+1 > tip {
		return nil, fmt.Errorf("height %d: need %d <= height < tip %d", height, period-1, tip)
	}
	if batch <= 0 {
		batch = 1000
	}
	hashes := make([]chainhash.Hash, height+1)
	for from := int32(0); from <= height; from += int32(batch) {
		n := min(int32(batch), height+1-from)
		strs := make([]string, n)
		calls := make([]coreCall, n)
		for i := range calls {
			calls[i] = coreCall{"getblockhash", []any{from + int32(i)}, &strs[i]}
		}
		if err := c.batch(ctx, calls); err != nil {
			return nil, err
		}
		for i, s := range strs {
			h, err := chainhash.NewHashFromStr(s)
			if err != nil || len(s) != 64 {
				return nil, fmt.Errorf("namecoind block hash %q at %d", s, from+int32(i))
			}
			hashes[from+int32(i)] = *h
		}
	}
	var end, next coreHeader
	if err := c.batch(ctx, []coreCall{
		{"getblockheader", []any{hashes[last].String()}, &end},
		{"getblockheader", []any{hashes[last+1].String()}, &next},
	}); err != nil {
		return nil, err
	}
	if end.Height != last || next.Height != last+1 {
		return nil, errors.New("namecoind returned headers at other heights")
	}
	bits, err := strconv.ParseUint(next.Bits, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("bits %q: %w", next.Bits, err)
	}
	work, ok := new(big.Int).SetString(end.Chainwork, 16)
	if !ok {
		return nil, fmt.Errorf("chainwork %q", end.Chainwork)
	}
	return &checkpointJSON{
		Height:         height,
		MerkleRoot:     headers.MerkleRoot(hashes).String(),
		LastHeight:     last,
		LastHash:       hashes[last].String(),
		LastBits:       uint32(bits),
		FirstTimestamp: end.Time,
		LastChainwork:  work.String(),
	}, nil
}
