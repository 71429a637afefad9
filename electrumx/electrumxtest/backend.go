// Package electrumxtest is a fake ElectrumX server for tests: it serves a
// chain (usually from chaingen) over TCP or TLS on loopback, speaks the
// protocol the way ElectrumX 1.20 does for Namecoin (including its padding
// and its small-reply timer when asked), and can be told to lie.
package electrumxtest

import (
	"encoding/hex"
	"slices"
	"sync"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// Backend is the chain a fake server serves. Safe for concurrent use.
type Backend struct {
	mu sync.RWMutex
	// headers[h] is the full header (with AuxPoW) at height h.
	headers [][]byte
	hexes   []string // hex of headers, kept so chunk replies are cheap
	hashes  []chainhash.Hash
	// blockTxs[h] are the txids of block h in order.
	blockTxs [][]chainhash.Hash
	txs      map[chainhash.Hash][]byte
	txHeight map[chainhash.Hash]int32
	history  map[string][]HistoryEntry
	// proofs are merkle proofs given explicitly (replayed recordings,
	// where the other transactions of a block are unknown).
	proofs map[chainhash.Hash]txProof
	// cpTree is the merkle tree of the last cp_height asked, leaves first.
	cpTree [][]chainhash.Hash
	// ExpirationDepth bounds get_value_proof like ElectrumX's
	// NAME_EXPIRATION (36000 mainnet, 30 regtest).
	ExpirationDepth int32
}

// HistoryEntry is one script-hash history entry.
type HistoryEntry struct {
	TxHash chainhash.Hash
	Height int32
}

// NewBackend is an empty backend.
func NewBackend() *Backend {
	return &Backend{
		txs:             map[chainhash.Hash][]byte{},
		txHeight:        map[chainhash.Hash]int32{},
		history:         map[string][]HistoryEntry{},
		proofs:          map[chainhash.Hash]txProof{},
		ExpirationDepth: 36000,
	}
}

// FromChain serves the blocks of g (genesis included).
func FromChain(g *chaingen.Generator) *Backend {
	b := NewBackend()
	b.ExpirationDepth = g.Params.NameExpirationDepth
	b.AddBlocks(g.Blocks...)
	return b
}

// AddBlocks appends blocks, which must continue the served chain, and
// indexes their transactions.
func (b *Backend) AddBlocks(blocks ...*chaingen.Block) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, blk := range blocks {
		b.truncateLocked(blk.Height)
		ids := make([]chainhash.Hash, len(blk.Txs))
		for i, raw := range blk.Txs {
			tx, _, err := headers.ParseTx(raw)
			if err != nil {
				panic("electrumxtest: block tx does not parse: " + err.Error())
			}
			ids[i] = tx.TxID()
			b.txs[ids[i]] = raw
			b.txHeight[ids[i]] = blk.Height
		}
		b.headers = append(b.headers, blk.Raw)
		b.hexes = append(b.hexes, hexOf(blk.Raw))
		b.hashes = append(b.hashes, blk.Hash)
		b.blockTxs = append(b.blockTxs, ids)
	}
}

// truncateLocked drops blocks at and above height (a reorg).
func (b *Backend) truncateLocked(height int32) {
	if int(height) >= len(b.headers) {
		return
	}
	for _, ids := range b.blockTxs[height:] {
		for _, id := range ids {
			delete(b.txs, id)
			delete(b.txHeight, id)
		}
	}
	b.headers, b.hashes, b.blockTxs = b.headers[:height], b.hashes[:height], b.blockTxs[:height]
	b.cpTree = nil
	b.hexes = b.hexes[:height]
	for sh, h := range b.history {
		kept := h[:0]
		for _, e := range h {
			if e.Height < height {
				kept = append(kept, e)
			}
		}
		b.history[sh] = kept
	}
}

type txProof struct {
	branch []chainhash.Hash
	pos    int
}

// AddRawHeader appends a full header as served (80 bytes + AuxPoW), for
// replaying a recorded chain; its block's transactions are unknown.
func (b *Backend) AddRawHeader(raw []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.headers = append(b.headers, raw)
	b.hexes = append(b.hexes, hexOf(raw))
	b.hashes = append(b.hashes, chainhash.DoubleHashH(raw[:80]))
	b.blockTxs = append(b.blockTxs, nil)
}

// AddTxProof serves a transaction with an explicit merkle proof.
func (b *Backend) AddTxProof(raw []byte, height int32, branch []chainhash.Hash, pos int) chainhash.Hash {
	tx, _, err := headers.ParseTx(raw)
	if err != nil {
		panic("electrumxtest: tx does not parse: " + err.Error())
	}
	id := tx.TxID()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txs[id] = raw
	b.txHeight[id] = height
	b.proofs[id] = txProof{branch: branch, pos: pos}
	return id
}

// AddHistory appends an entry to a script hash's history.
func (b *Backend) AddHistory(scriptHash string, e HistoryEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.history[scriptHash] = append(b.history[scriptHash], e)
}

// ReplaceHeader serves raw as the header at height, leaving the hashes
// behind cp_height proofs as they were (for liars).
func (b *Backend) ReplaceHeader(height int32, raw []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.headers[height] = raw
	b.hexes[height] = hexOf(raw)
}

// SetHistory replaces a script hash's history (for liars).
func (b *Backend) SetHistory(scriptHash string, h []HistoryEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.history[scriptHash] = h
}

// SetTx serves raw under id whatever its real id is (for liars).
func (b *Backend) SetTx(id chainhash.Hash, raw []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txs[id] = raw
}

// Tip is the served tip height.
func (b *Backend) Tip() int32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return int32(len(b.headers)) - 1
}

// Header returns the full header at height.
func (b *Backend) Header(height int32) ([]byte, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if height < 0 || int(height) >= len(b.headers) {
		return nil, false
	}
	return b.headers[height], true
}

// appendJoinedHex appends the hex of headers start..start+count-1
// joined, each cut to 80 bytes when truncate is set.
func (b *Backend) appendJoinedHex(dst []byte, start, count int64, truncate bool) []byte {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for h := start; h < start+count; h++ {
		n += len(b.hexes[h])
	}
	dst = slices.Grow(dst, n)
	for h := start; h < start+count; h++ {
		x := b.hexes[h]
		if truncate {
			x = x[:160]
		}
		dst = append(dst, x...)
	}
	return dst
}

// appendSplitBugHex appends what ElectrumX 1.19 and later send for
// blockchain.block.headers with cp_height when start > 0: the joined
// headers from start, split at the boundaries of the headers from genesis
// (block_headers_array's genesis-relative offsets) and each piece cut to
// 80 bytes.
func (b *Backend) appendSplitBugHex(dst []byte, start, count int64) []byte {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var raw []byte
	for h := start; h < start+count; h++ {
		raw = append(raw, b.headers[h]...)
	}
	for i, off := 0, 0; off < len(raw); i++ {
		end := len(raw)
		if i < len(b.headers) {
			end = min(off+len(b.headers[i]), len(raw))
		}
		piece := raw[off:end]
		dst = append(dst, hexOf(piece[:min(80, len(piece))])...)
		off = end
	}
	return dst
}

// Tx returns a raw transaction and its height.
func (b *Backend) Tx(id chainhash.Hash) ([]byte, int32, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	raw, ok := b.txs[id]
	return raw, b.txHeight[id], ok
}

// History returns a script hash's history.
func (b *Backend) History(scriptHash string) []HistoryEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]HistoryEntry(nil), b.history[scriptHash]...)
}

// cpProof is the cp_height proof of the block at height. The tree of a
// cp_height is kept (ElectrumX caches it too): a sync asks under one
// cp_height thousands of times, and rebuilding it each time would make
// the fake, not the client, the cost being measured.
func (b *Backend) cpProof(height, cp int32) (branch []chainhash.Hash, root chainhash.Hash) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cpTree == nil || len(b.cpTree[0]) != int(cp)+1 || b.cpTree[0][cp] != b.hashes[cp] {
		level := slices.Clone(b.hashes[:cp+1])
		b.cpTree = [][]chainhash.Hash{level}
		for len(level) > 1 {
			if len(level)%2 == 1 {
				level = append(level, level[len(level)-1])
			}
			up := make([]chainhash.Hash, len(level)/2)
			var buf [64]byte
			for i := range up {
				copy(buf[:32], level[2*i][:])
				copy(buf[32:], level[2*i+1][:])
				up[i] = chainhash.DoubleHashH(buf[:])
			}
			b.cpTree = append(b.cpTree, up)
			level = up
		}
	}
	i := int(height)
	for _, level := range b.cpTree[:len(b.cpTree)-1] {
		sib := i ^ 1
		if sib >= len(level) {
			sib = i
		}
		branch = append(branch, level[sib])
		i /= 2
	}
	return branch, b.cpTree[len(b.cpTree)-1][0]
}

// merkle is the position and branch of txid in its block.
func (b *Backend) merkle(id chainhash.Hash, height int32) ([]chainhash.Hash, int, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if p, ok := b.proofs[id]; ok && b.txHeight[id] == height {
		return p.branch, p.pos, true
	}
	if height < 0 || int(height) >= len(b.blockTxs) {
		return nil, 0, false
	}
	ids := b.blockTxs[height]
	for i, t := range ids {
		if t == id {
			return headers.MerkleBranch(ids, i), i, true
		}
	}
	return nil, 0, false
}

func hexHashes(hs []chainhash.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
