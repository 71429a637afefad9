package electrumx

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// HexBytes decodes a JSON hex string strictly.
type HexBytes []byte

// UnmarshalJSON implements json.Unmarshaler. A plain quoted hex string
// (what servers send) is decoded in place, without the copy and rescan of
// a JSON string: header chunks are megabytes of hex.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		in := b[1 : len(b)-1]
		out := make([]byte, len(in)/2)
		if _, err := hex.Decode(out, in); err == nil && len(in)%2 == 0 {
			*h = out
			return nil
		}
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a hex string: %w", err)
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("bad hex: %w", err)
	}
	*h = v
	return nil
}

// Hash decodes a 64-digit hex hash in display (byte-reversed) order, the
// way ElectrumX writes txids, block hashes and merkle branches.
type Hash chainhash.Hash

// UnmarshalJSON implements json.Unmarshaler, refusing short or long hex
// (chainhash.NewHashFromStr would zero-pad it).
func (h *Hash) UnmarshalJSON(b []byte) error {
	// Fast path for what servers send, a plain quoted string: decoding
	// through json.Unmarshal cost a third of a name lookup's JSON time.
	if len(b) == 66 && b[0] == '"' && b[65] == '"' {
		var v chainhash.Hash
		if _, err := hex.Decode(v[:], b[1:65]); err == nil {
			slices.Reverse(v[:])
			*h = Hash(v)
			return nil
		}
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a hash string: %w", err)
	}
	if len(s) != 64 {
		return fmt.Errorf("hash %q is not 64 hex digits", s)
	}
	v, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return err
	}
	*h = Hash(*v)
	return nil
}

// MarshalJSON writes display order.
func (h Hash) MarshalJSON() ([]byte, error) { return json.Marshal(chainhash.Hash(h).String()) }

func hashes(in []Hash) []chainhash.Hash {
	out := make([]chainhash.Hash, len(in))
	for i := range in {
		out[i] = chainhash.Hash(in[i])
	}
	return out
}

// HeaderNotification is a blockchain.headers.subscribe result: the tip's
// full header (with AuxPoW) and height.
type HeaderNotification struct {
	Height int32    `json:"height"`
	Hex    HexBytes `json:"hex"`
}

// SubscribeHeaders subscribes to new tips. It returns the current tip and
// a channel of later ones, closed when the connection ends.
func (c *Client) SubscribeHeaders(ctx context.Context) (HeaderNotification, <-chan HeaderNotification, error) {
	raw, err := c.subscribe("blockchain.headers.subscribe", 4)
	if err != nil {
		return HeaderNotification{}, nil, err
	}
	var tip HeaderNotification
	if err := c.Call(ctx, "blockchain.headers.subscribe", nil, &tip); err != nil {
		return HeaderNotification{}, nil, err
	}
	out := make(chan HeaderNotification, 4)
	go func() {
		defer close(out)
		for params := range raw {
			var ns []HeaderNotification
			if err := json.Unmarshal(params, &ns); err != nil || len(ns) == 0 {
				c.log.Debug("bad headers notification", "server", c.server.String(), "err", err)
				continue
			}
			for _, n := range ns {
				select {
				case out <- n:
				case <-c.closed:
					return
				}
			}
		}
	}()
	return tip, out, nil
}

// HeaderProof is a header with its cp_height merkle proof.
type HeaderProof struct {
	Header []byte
	Branch []chainhash.Hash
	Root   chainhash.Hash
}

// HeaderProofJSON is the JSON form of a cp_height header reply, for
// batches (BatchCall.Result); Proof converts it.
type HeaderProofJSON struct {
	Header HexBytes `json:"header"`
	Branch []Hash   `json:"branch"`
	Root   Hash     `json:"root"`
}

// Proof is the reply as a HeaderProof.
func (j HeaderProofJSON) Proof() *HeaderProof {
	return &HeaderProof{Header: j.Header, Branch: hashes(j.Branch), Root: chainhash.Hash(j.Root)}
}

// BlockHeader gets one header. With cpHeight 0 the full header with AuxPoW
// comes back and Branch is empty; with cpHeight > 0 an 80-byte header and
// its proof against the cp_height root.
func (c *Client) BlockHeader(ctx context.Context, height, cpHeight int32) (*HeaderProof, error) {
	if cpHeight == 0 {
		var h HexBytes
		if err := c.Call(ctx, "blockchain.block.header", []any{height}, &h); err != nil {
			return nil, err
		}
		return &HeaderProof{Header: h}, nil
	}
	var j HeaderProofJSON
	if err := c.Call(ctx, "blockchain.block.header", []any{height, cpHeight}, &j); err != nil {
		return nil, err
	}
	return j.Proof(), nil
}

// HeadersReply is a blockchain.block.headers result. Raw is the headers
// joined as sent (protocol 1.6 arrays are joined too); the server's count
// and split are not to be trusted (ElectrumX 1.19+ splits AuxPoW headers
// wrongly), so callers parse Raw themselves.
type HeadersReply struct {
	Count  int
	Max    int
	Raw    []byte
	Branch []chainhash.Hash
	Root   chainhash.Hash

	pooled bool // Raw is a recyclable decode buffer
}

// Release hands Raw's buffer back for reuse by later replies; Raw (and
// anything still pointing into it) must not be used afterwards.
func (r *HeadersReply) Release() {
	if r.pooled {
		putHexBuf(r.Raw)
	}
	r.Raw, r.pooled = nil, false
}

// BlockHeaders gets count headers from start; cpHeight as for BlockHeader.
func (c *Client) BlockHeaders(ctx context.Context, start int32, count int, cpHeight int32) (*HeadersReply, error) {
	params := []any{start, count}
	if cpHeight > 0 {
		params = append(params, cpHeight)
	}
	r := &HeadersReply{}
	raw, hexBody, err := c.callHex(ctx, "blockchain.block.headers", params)
	if err != nil {
		return nil, err
	}
	if err := r.decode(raw, hexBody); err != nil {
		return nil, fmt.Errorf("%w: blockchain.block.headers: %v", ErrBadReply, err)
	}
	return r, nil
}

// decode reads a headers result. The hex member (megabytes) is decoded in
// place; the small members go through encoding/json.
func (r *HeadersReply) decode(raw, hexBody []byte) error {
	fields, err := scanObject(raw)
	if err != nil {
		return err
	}
	small := func(key string, v any) error {
		if b, ok := fields[key]; ok {
			return json.Unmarshal(b, v)
		}
		return nil
	}
	var branch []Hash
	var root *Hash
	var hdrs []HexBytes
	if err := errors.Join(small("count", &r.Count), small("max", &r.Max),
		small("branch", &branch), small("root", &root), small("headers", &hdrs)); err != nil {
		return err
	}
	r.Branch = hashes(branch)
	if root != nil {
		r.Root = chainhash.Hash(*root)
	}
	switch hexField, ok := fields["hex"]; {
	case ok && hexBody != nil:
		if string(hexField) != `""` {
			return errors.New("hex member read twice")
		}
		r.Raw, r.pooled = hexBody, true
	case ok:
		var h HexBytes
		if err := h.UnmarshalJSON(hexField); err != nil {
			return err
		}
		r.Raw = h
	case hdrs != nil:
		for _, h := range hdrs {
			r.Raw = append(r.Raw, h...)
		}
	default:
		return errors.New("no hex or headers member")
	}
	return nil
}

// HistoryItem is one blockchain.scripthash.get_history entry.
type HistoryItem struct {
	TxHash Hash  `json:"tx_hash"`
	Height int32 `json:"height"`
	Fee    int64 `json:"fee,omitempty"`
}

// GetHistory returns a script hash's history, confirmed entries in chain
// order (as the server claims).
func (c *Client) GetHistory(ctx context.Context, scriptHash string) ([]HistoryItem, error) {
	var h []HistoryItem
	if err := c.Call(ctx, "blockchain.scripthash.get_history", []any{scriptHash}, &h); err != nil {
		return nil, err
	}
	return h, nil
}

// GetTransaction returns a raw transaction. The caller checks its txid.
func (c *Client) GetTransaction(ctx context.Context, txid chainhash.Hash) ([]byte, error) {
	var h HexBytes
	if err := c.Call(ctx, "blockchain.transaction.get", []any{txid.String()}, &h); err != nil {
		return nil, err
	}
	return h, nil
}

// MerkleProof is a transaction's merkle branch in its block.
type MerkleProof struct {
	BlockHeight int32
	Merkle      []chainhash.Hash
	Pos         int
}

type merkleJSON struct {
	BlockHeight int32  `json:"block_height"`
	Merkle      []Hash `json:"merkle"`
	Pos         int    `json:"pos"`
}

// GetMerkle returns the merkle proof of txid in the block at height.
func (c *Client) GetMerkle(ctx context.Context, txid chainhash.Hash, height int32) (*MerkleProof, error) {
	var j merkleJSON
	if err := c.Call(ctx, "blockchain.transaction.get_merkle", []any{txid.String(), height}, &j); err != nil {
		return nil, err
	}
	return &MerkleProof{BlockHeight: j.BlockHeight, Merkle: hashes(j.Merkle), Pos: j.Pos}, nil
}

// ValueProofEntry is one update of a name in a get_value_proof result.
type ValueProofEntry struct {
	Height int32
	Tx     []byte
	Merkle MerkleProof
	// Header is set for entries at or below cp_height.
	Header *HeaderProof
}

// NameGetValueProof returns a name's updates newest first, each with its
// transaction and merkle proof, in one round trip (protocol 1.4.3).
func (c *Client) NameGetValueProof(ctx context.Context, scriptHash string, cpHeight int32) ([]ValueProofEntry, error) {
	call, decode, err := c.ValueProofCall(scriptHash, cpHeight)
	if err != nil {
		return nil, err
	}
	if err := c.Call(ctx, call.Method, call.Params, call.Result); err != nil {
		return nil, err
	}
	return decode()
}

type valueProofJSON map[string][]struct {
	Height   int32            `json:"height"`
	Tx       HexBytes         `json:"tx"`
	TxMerkle merkleJSON       `json:"tx_merkle"`
	Header   *HeaderProofJSON `json:"header"`
}

// ValueProofCall is blockchain.name.get_value_proof as a call to send in
// a batch (protocol 1.4.3); decode reads its result once the batch has
// been answered (check call.Err first).
func (c *Client) ValueProofCall(scriptHash string, cpHeight int32) (call *BatchCall, decode func() ([]ValueProofEntry, error), err error) {
	if !c.HasValueProof() {
		return nil, nil, fmt.Errorf("%w: blockchain.name.get_value_proof on protocol %s", ErrNotSupported, c.protocol)
	}
	params := []any{scriptHash}
	if cpHeight > 0 {
		params = append(params, cpHeight)
	}
	j := valueProofJSON{}
	call = &BatchCall{Method: "blockchain.name.get_value_proof", Params: params, Result: &j}
	decode = func() ([]ValueProofEntry, error) {
		entries, ok := j[strings.ToLower(scriptHash)]
		if !ok || len(j) != 1 {
			return nil, fmt.Errorf("%w: get_value_proof answered for other script hashes", ErrBadReply)
		}
		out := make([]ValueProofEntry, len(entries))
		for i, e := range entries {
			out[i] = ValueProofEntry{
				Height: e.Height,
				Tx:     e.Tx,
				Merkle: MerkleProof{BlockHeight: e.Height, Merkle: hashes(e.TxMerkle.Merkle), Pos: e.TxMerkle.Pos},
			}
			if e.Header != nil {
				out[i].Header = e.Header.Proof()
			}
		}
		return out, nil
	}
	return call, decode, nil
}

// HeadersCall is blockchain.block.headers (full headers, no cp_height) as
// a call to send in a batch; decode returns the joined headers, which the
// caller parses itself.
func HeadersCall(start int32, count int) (call *BatchCall, decode func() ([]byte, error)) {
	var raw json.RawMessage
	call = &BatchCall{Method: "blockchain.block.headers", Params: []any{start, count}, Result: &raw}
	decode = func() ([]byte, error) {
		r := &HeadersReply{}
		if err := r.decode(raw, nil); err != nil {
			return nil, fmt.Errorf("%w: blockchain.block.headers: %v", ErrBadReply, err)
		}
		return r.Raw, nil
	}
	return call, decode
}

// Ping checks the connection is alive.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, "server.ping", nil, nil)
}
