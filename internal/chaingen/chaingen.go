// Package chaingen builds valid Namecoin header chains for tests: every
// block after genesis carries a real AuxPoW structure (a parent header
// whose proof of work is mined, a parent coinbase of 1-2 KB carrying the
// merged-mining magic and chain root, coinbase and chain merkle branches),
// as Namecoin Core's regtest produces them. A Spec bends one rule at a time
// to make the invalid variants the rejection tests need.
package chaingen

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

// DefaultVersion is what Namecoin Core's miner writes: base version 4,
// the AuxPoW flag and chain ID 1.
const DefaultVersion = 4 | headers.VersionAuxPoW | 1*headers.VersionChainStart

// parentVersion is a Bitcoin-style parent block version: chain ID 0x2000,
// no AuxPoW flag.
const parentVersion = 0x20000000

// Block is one generated block.
type Block struct {
	Height int32
	Header *headers.FullHeader
	Raw    []byte // as ElectrumX serves it: 80 bytes + AuxPoW
	Hash   chainhash.Hash
	Info   headers.BlockInfo
	// Txs are the raw transactions whose txids make the merkle root; the
	// first is the block's own coinbase.
	Txs [][]byte
}

// Generator extends one chain. It is not safe for concurrent use.
type Generator struct {
	Params *headers.Params
	Blocks []*Block
	rng    *rand.Rand
	// Spacing is the time between blocks in seconds.
	Spacing uint32
	// CoinbaseSize bounds the parent coinbase size (bytes).
	MinCoinbase, MaxCoinbase int
	// Slim leaves the coinbase and chain merkle branches empty (unless a
	// Spec forces a chain branch), as Namecoin Core's regtest miner does:
	// with a small coinbase, headers under 400 bytes (Core's are 294).
	Slim bool
}

// New starts a chain at the network's genesis. The same seed gives the
// same chain.
func New(p *headers.Params, seed uint64) *Generator {
	g := &Generator{
		Params:      p,
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		Spacing:     uint32(p.TargetSpacing),
		MinCoinbase: 1000,
		MaxCoinbase: 2000,
	}
	gh := p.GenesisHeader
	fh := &headers.FullHeader{Header: gh}
	g.Blocks = []*Block{{
		Height: 0, Header: fh, Raw: fh.Serialize(), Hash: p.GenesisHash,
		Info: p.GenesisInfo(),
	}}
	return g
}

// Tip is the newest block.
func (g *Generator) Tip() *Block { return g.Blocks[len(g.Blocks)-1] }

// BlockAt implements headers.ChainContext over the generated chain.
func (g *Generator) BlockAt(height int32) (headers.BlockInfo, bool) {
	if height < 0 || int(height) >= len(g.Blocks) {
		return headers.BlockInfo{}, false
	}
	return g.Blocks[height].Info, true
}

// Fork returns a generator sharing blocks 0..height with g, to build a
// competing branch; seed makes its blocks differ from g's.
func (g *Generator) Fork(height int32, seed uint64) *Generator {
	f := *g
	f.Blocks = slices.Clone(g.Blocks[:height+1])
	f.rng = rand.New(rand.NewPCG(seed, ^seed))
	return &f
}

// Chain appends n valid blocks and returns them.
func (g *Generator) Chain(n int) []*Block {
	out := make([]*Block, n)
	for i := range out {
		out[i] = g.Next(Spec{})
	}
	return out
}

// Joined returns the raw bytes of blocks start..start+count-1 joined, as in
// an ElectrumX blockchain.block.headers reply.
func (g *Generator) Joined(start, count int) []byte {
	blocks := g.Blocks[start : start+count]
	n := 0
	for _, b := range blocks {
		n += len(b.Raw)
	}
	out := make([]byte, 0, n)
	for _, b := range blocks {
		out = append(out, b.Raw...)
	}
	return out
}

// Spec bends the next block. The zero value makes a valid block.
type Spec struct {
	Version   int32           // 0: DefaultVersion
	Time      uint32          // 0: previous time + Spacing
	Bits      uint32          // 0: the required next work
	PrevBlock *chainhash.Hash // nil: the tip's hash
	Txs       [][]byte        // extra transactions after the coinbase
	NoAuxPoW  bool            // plain header, own proof of work
	WeakPoW   bool            // the proof-of-work hash misses the target
	// ChainBranchLen forces a chain branch of this many hashes (> 30
	// too); 0 picks 0..3 at random, -1 forces an empty branch.
	ChainBranchLen  int
	ChainIndexDelta int32 // added to the expected chain index
	ParentVersion   int32 // 0: parentVersion
	// Script builds the coinbase scriptSig from the magic, the chain root
	// (display order) and the 8 size/nonce bytes; nil: standard layout.
	Script         func(magic, root, sizeNonce []byte) []byte
	MerkleSize     uint32 // 0: 2^branch length
	MerkleNonce    uint32 // nonce in the coinbase
	NoCoinbaseIns  bool   // parent coinbase without inputs
	BadParentRoot  bool   // parent merkle root does not match the coinbase
	SegwitCoinbase int    // 0: random, 1: with witness, -1: without
}

// Next appends one block built from s and returns it. It does not check
// the block; invalid specs make invalid blocks.
func (g *Generator) Next(s Spec) *Block {
	b := g.Build(s)
	g.Blocks = append(g.Blocks, b)
	return b
}

// Build makes the block that would follow the tip, without appending it.
func (g *Generator) Build(s Spec) *Block {
	prev := g.Tip()
	height := prev.Height + 1
	h := headers.Header{
		Version:   s.Version,
		PrevBlock: prev.Hash,
		Timestamp: s.Time,
		Bits:      s.Bits,
	}
	if h.Version == 0 {
		h.Version = DefaultVersion
	}
	if s.NoAuxPoW {
		h.Version &^= headers.VersionAuxPoW
	}
	if s.PrevBlock != nil {
		h.PrevBlock = *s.PrevBlock
	}
	if h.Timestamp == 0 {
		h.Timestamp = prev.Info.Time + g.Spacing
	}
	if h.Bits == 0 {
		bits, err := headers.NextWorkRequired(prev.Info, h.Timestamp, g, g.Params)
		if err != nil {
			panic(fmt.Sprintf("chaingen: next work at %d: %v", height, err))
		}
		h.Bits = bits
	}
	coinbase := g.blockCoinbase(height)
	txs := append([][]byte{coinbase}, s.Txs...)
	h.MerkleRoot = headers.MerkleRoot(txIDs(txs))

	fh := &headers.FullHeader{Header: h}
	if h.IsAuxPoW() {
		h.Nonce = g.rng.Uint32()
		fh.Header = h
		fh.AuxPoW = g.auxPoW(fh.BlockHash(), h.ChainID(), h.Bits, s)
	} else {
		fh.Nonce = g.mine(&fh.Header, h.Bits, s.WeakPoW)
	}
	hash := fh.BlockHash()
	return &Block{
		Height: height,
		Header: fh,
		Raw:    fh.Serialize(),
		Hash:   hash,
		Txs:    txs,
		Info:   headers.NextBlockInfo(prev.Info, &fh.Header, hash, g.Params),
	}
}

// mine finds a nonce whose header hash meets bits (or, with weak, misses).
func (g *Generator) mine(h *headers.Header, bits uint32, weak bool) uint32 {
	target := headers.CompactToBig(bits)
	for n := g.rng.Uint32(); ; n++ {
		h.Nonce = n
		hash := h.BlockHash()
		ok := hashToBig(hash).Cmp(target) <= 0
		if ok != weak {
			return n
		}
	}
}

func (g *Generator) auxPoW(blockHash chainhash.Hash, chainID int32, bits uint32, s Spec) *headers.AuxPoW {
	depth := g.rng.IntN(4)
	switch {
	case s.ChainBranchLen > 0:
		depth = s.ChainBranchLen
	case s.ChainBranchLen < 0 || g.Slim:
		depth = 0
	}
	chainBranch := g.randomHashes(depth)
	nonce := s.MerkleNonce
	index := int32(headers.ExpectedChainIndex(nonce, chainID, min(depth, 30))) + s.ChainIndexDelta
	root := headers.MerkleBranchRoot(blockHash, chainBranch, uint32(index))
	slices.Reverse(root[:])

	size := s.MerkleSize
	if size == 0 {
		size = 1 << uint(min(depth, 31))
	}
	sizeNonce := binary.LittleEndian.AppendUint32(nil, size)
	sizeNonce = binary.LittleEndian.AppendUint32(sizeNonce, nonce)

	var script []byte
	if s.Script != nil {
		script = s.Script(headers.MergedMiningMagic, root[:], sizeNonce)
	} else {
		script = StandardScript(root[:], sizeNonce, g.rng.Uint64())
	}
	segwit := s.SegwitCoinbase > 0 || (s.SegwitCoinbase == 0 && g.rng.IntN(2) == 0)
	cbRaw := g.parentCoinbase(script, s.NoCoinbaseIns, segwit)
	cb, _, err := headers.ParseTx(cbRaw)
	if err != nil {
		panic(fmt.Sprintf("chaingen: own coinbase does not parse: %v", err))
	}

	cbBranch := g.randomHashes(5 + g.rng.IntN(8))
	if g.Slim {
		cbBranch = nil
	}
	parent := headers.Header{
		Version:    s.ParentVersion,
		PrevBlock:  g.randomHash(),
		MerkleRoot: headers.MerkleBranchRoot(cb.TxID(), cbBranch, 0),
		Timestamp:  g.Tip().Info.Time,
		Bits:       bits,
	}
	if parent.Version == 0 {
		parent.Version = parentVersion
	}
	if s.BadParentRoot {
		parent.MerkleRoot[0] ^= 0xff
	}
	g.mine(&parent, bits, s.WeakPoW)
	return &headers.AuxPoW{
		CoinbaseTx:     cb,
		CoinbaseBranch: cbBranch,
		ChainBranch:    chainBranch,
		ChainIndex:     index,
		ParentHeader:   parent,
	}
}

// StandardScript is the usual parent coinbase scriptSig: a height-like
// push, the magic, the chain root, size and nonce, then an extra nonce.
func StandardScript(root, sizeNonce []byte, extra uint64) []byte {
	s := []byte{0x03, 0x01, 0x02, 0x03}
	s = append(s, headers.MergedMiningMagic...)
	s = append(s, root...)
	s = append(s, sizeNonce...)
	return binary.LittleEndian.AppendUint64(append(s, 0x08), extra)
}

// parentCoinbase builds a coinbase of MinCoinbase..MaxCoinbase bytes with
// many payout outputs, like a mining pool's.
func (g *Generator) parentCoinbase(script []byte, noInputs, segwit bool) []byte {
	// Outputs are 34 bytes: round up, and leave room for that rounding.
	want := g.MinCoinbase + g.rng.IntN(g.MaxCoinbase-g.MinCoinbase-34+1)
	fixed := 4 + 1 + (32 + 4 + 1 + len(script) + 4) + 3 + 4
	if segwit {
		fixed += 2 + 1 + 1 + 32
	}
	nOut := max(1, (want-fixed+33)/34)

	tx := binary.LittleEndian.AppendUint32(nil, 1)
	if noInputs {
		// The only encoding Core reads as "no inputs": an empty input
		// vector, a zero flag byte (so no outputs are read) and the lock
		// time.
		return binary.LittleEndian.AppendUint32(append(tx, 0x00, 0x00), 0)
	}
	if segwit {
		tx = append(tx, 0x00, 0x01)
	}
	tx = append(tx, 0x01)
	tx = append(tx, make([]byte, 32)...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = headers.AppendVarInt(tx, uint64(len(script)))
	tx = append(tx, script...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = headers.AppendVarInt(tx, uint64(nOut))
	tx = g.appendOutputs(tx, nOut)
	if segwit {
		tx = append(tx, 0x01, 0x20)
		tx = append(tx, make([]byte, 32)...)
	}
	return binary.LittleEndian.AppendUint32(tx, 0)
}

func (g *Generator) appendOutputs(tx []byte, n int) []byte {
	for i := 0; i < n; i++ {
		tx = binary.LittleEndian.AppendUint64(tx, uint64(g.rng.IntN(1e8)))
		tx = append(tx, 25, 0x76, 0xa9, 0x14)
		var pkh [20]byte
		for j := range pkh {
			pkh[j] = byte(g.rng.Uint32())
		}
		tx = append(tx, pkh[:]...)
		tx = append(tx, 0x88, 0xac)
	}
	return tx
}

// blockCoinbase is the Namecoin block's own coinbase (not the parent's).
func (g *Generator) blockCoinbase(height int32) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, 1)
	tx = append(tx, 0x01)
	tx = append(tx, make([]byte, 32)...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 0x05, 0x04)
	tx = binary.LittleEndian.AppendUint32(tx, uint32(height))
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 0x01)
	tx = g.appendOutputs(tx, 1)
	return binary.LittleEndian.AppendUint32(tx, 0)
}

func (g *Generator) randomHash() chainhash.Hash {
	var h chainhash.Hash
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(h[i:], g.rng.Uint64())
	}
	return h
}

func (g *Generator) randomHashes(n int) []chainhash.Hash {
	out := make([]chainhash.Hash, n)
	for i := range out {
		out[i] = g.randomHash()
	}
	return out
}

func txIDs(txs [][]byte) []chainhash.Hash {
	ids := make([]chainhash.Hash, len(txs))
	for i, raw := range txs {
		tx, _, err := headers.ParseTx(raw)
		if err != nil {
			panic(fmt.Sprintf("chaingen: tx %d does not parse: %v", i, err))
		}
		ids[i] = tx.TxID()
	}
	return ids
}

func hashToBig(h chainhash.Hash) *big.Int {
	r := h
	slices.Reverse(r[:])
	return new(big.Int).SetBytes(r[:])
}
