package headers

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

const (
	// HeaderSize is the size of a pure block header.
	HeaderSize = 80

	// VersionAuxPoW is the version flag that says AuxPoW data follows.
	VersionAuxPoW = 1 << 8

	// VersionChainStart is the multiplier of the chain ID in the version.
	VersionChainStart = 1 << 16
)

// ErrMalformed is wrapped by every codec error: the bytes are not a header,
// an AuxPoW or a transaction. It is a parse failure, not a rule violation.
var ErrMalformed = errors.New("malformed data")

// Header is the 80-byte pure block header (Core's CPureBlockHeader).
type Header struct {
	Version    int32
	PrevBlock  chainhash.Hash
	MerkleRoot chainhash.Hash
	Timestamp  uint32
	Bits       uint32
	Nonce      uint32
}

// ChainID is the merge-mining chain ID in the version (signed division, as
// Core's GetChainId).
func (h *Header) ChainID() int32 { return h.Version / VersionChainStart }

// BaseVersion is the version without chain ID and flags.
func (h *Header) BaseVersion() int32 { return h.Version % 256 }

// IsAuxPoW reports whether the version says AuxPoW data follows.
func (h *Header) IsAuxPoW() bool { return h.Version&VersionAuxPoW != 0 }

// IsLegacy reports a pre-merge-mining version-1 header.
func (h *Header) IsLegacy() bool { return h.Version == 1 }

// Serialize returns the 80-byte wire form.
func (h *Header) Serialize() [HeaderSize]byte {
	var b [HeaderSize]byte
	binary.LittleEndian.PutUint32(b[0:4], uint32(h.Version))
	copy(b[4:36], h.PrevBlock[:])
	copy(b[36:68], h.MerkleRoot[:])
	binary.LittleEndian.PutUint32(b[68:72], h.Timestamp)
	binary.LittleEndian.PutUint32(b[72:76], h.Bits)
	binary.LittleEndian.PutUint32(b[76:80], h.Nonce)
	return b
}

// BlockHash is SHA256d of the 80 bytes; AuxPoW data never enters it.
func (h *Header) BlockHash() chainhash.Hash {
	b := h.Serialize()
	return chainhash.DoubleHashH(b[:])
}

// ParseHeader decodes the first 80 bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d",
			ErrMalformed, HeaderSize, len(b))
	}
	var h Header
	h.Version = int32(binary.LittleEndian.Uint32(b[0:4]))
	copy(h.PrevBlock[:], b[4:36])
	copy(h.MerkleRoot[:], b[36:68])
	h.Timestamp = binary.LittleEndian.Uint32(b[68:72])
	h.Bits = binary.LittleEndian.Uint32(b[72:76])
	h.Nonce = binary.LittleEndian.Uint32(b[76:80])
	return h, nil
}

// AuxPoW is the merge-mining proof that follows a header whose version has
// VersionAuxPoW (Core's CAuxPow).
type AuxPoW struct {
	// CoinbaseTx is the parent block's coinbase, as serialized (with
	// witness data if it had any). Its outputs are not decoded (TxOut is
	// nil): no rule reads them. ParseTx(CoinbaseTx.Raw) decodes them.
	CoinbaseTx *Tx
	// ParentHash is the 32-byte block hash field. Consensus ignores it:
	// current Core writes zeros, historic data holds the parent's hash.
	ParentHash chainhash.Hash
	// CoinbaseBranch links the coinbase txid to the parent's merkle root.
	CoinbaseBranch []chainhash.Hash
	// CoinbaseIndex is read and ignored, as Core does (it writes 0).
	CoinbaseIndex int32
	// ChainBranch links this block's hash to the chain merkle root in the
	// coinbase.
	ChainBranch []chainhash.Hash
	ChainIndex  int32
	// ParentHeader is the parent (e.g. Bitcoin) block header whose hash
	// carries the proof of work.
	ParentHeader Header
}

// FullHeader is a header as ElectrumX serves it: 80 bytes, then the AuxPoW
// when the version has VersionAuxPoW.
type FullHeader struct {
	Header
	AuxPoW *AuxPoW
}

// minAuxPoWSize is the smallest possible AuxPoW: a minimal transaction
// (10 bytes), hashBlock, two empty branches with indexes, parent header.
const minAuxPoWSize = 10 + 32 + 1 + 4 + 1 + 4 + HeaderSize

// ParseFullHeader decodes one header and its AuxPoW from the start of b and
// returns how many bytes it used. It never panics and never allocates more
// than the input can fill.
func ParseFullHeader(b []byte) (*FullHeader, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, 0, err
	}
	fh := &FullHeader{Header: h}
	if !h.IsAuxPoW() {
		return fh, HeaderSize, nil
	}
	aux, n, err := parseAuxPoW(b[HeaderSize:])
	if err != nil {
		return nil, 0, fmt.Errorf("auxpow: %w", err)
	}
	fh.AuxPoW = aux
	return fh, HeaderSize + n, nil
}

// ParseFullHeaders decodes a concatenation of full headers, as in one
// ElectrumX chunk. It trusts no count from the server: it reads headers
// until the bytes run out and fails on any trailing garbage.
func ParseFullHeaders(b []byte) ([]*FullHeader, error) {
	return ParseFullHeadersN(b, -1)
}

// ErrTooManyHeaders: a reply holds more headers than were asked for.
var ErrTooManyHeaders = errors.New("more headers than asked for")

// ParseFullHeadersN is ParseFullHeaders for a reply that should hold at
// most n headers (n < 0: any number). It stops at the n+1st with
// ErrTooManyHeaders, so that a reply of megabytes (10 MB of zeros parse as
// 65,536 bare headers) costs no more than the n headers it may hold.
func ParseFullHeadersN(b []byte, n int) ([]*FullHeader, error) {
	// Each header uses at least 80 bytes; a typical AuxPoW one ~300-2000.
	capacity := min(len(b)/HeaderSize, 2016)
	if n >= 0 {
		capacity = min(capacity, n)
	}
	out := make([]*FullHeader, 0, capacity)
	for off := 0; off < len(b); {
		if n >= 0 && len(out) == n {
			return nil, fmt.Errorf("%w: %d bytes after %d headers", ErrTooManyHeaders, len(b)-off, n)
		}
		fh, size, err := ParseFullHeader(b[off:])
		if err != nil {
			return nil, fmt.Errorf("header %d at byte %d: %w", len(out), off, err)
		}
		out = append(out, fh)
		off += size
	}
	return out, nil
}

func parseAuxPoW(b []byte) (*AuxPoW, int, error) {
	if len(b) < minAuxPoWSize {
		return nil, 0, fmt.Errorf("%w: %d bytes is shorter than any auxpow",
			ErrMalformed, len(b))
	}
	tx, n, err := parseTx(b, false)
	if err != nil {
		return nil, 0, fmt.Errorf("coinbase: %w", err)
	}
	r := reader{b: b, off: n}
	aux := &AuxPoW{CoinbaseTx: tx}
	if err := r.hash(&aux.ParentHash); err != nil {
		return nil, 0, err
	}
	if aux.CoinbaseBranch, err = r.branch(); err != nil {
		return nil, 0, fmt.Errorf("coinbase branch: %w", err)
	}
	idx, err := r.uint32()
	if err != nil {
		return nil, 0, err
	}
	aux.CoinbaseIndex = int32(idx)
	if aux.ChainBranch, err = r.branch(); err != nil {
		return nil, 0, fmt.Errorf("chain branch: %w", err)
	}
	if idx, err = r.uint32(); err != nil {
		return nil, 0, err
	}
	aux.ChainIndex = int32(idx)
	raw, err := r.bytes(HeaderSize)
	if err != nil {
		return nil, 0, fmt.Errorf("parent header: %w", err)
	}
	aux.ParentHeader, _ = ParseHeader(raw)
	return aux, r.off, nil
}

// Serialize returns the wire form: 80 bytes, then the AuxPoW if present.
func (fh *FullHeader) Serialize() []byte {
	hb := fh.Header.Serialize()
	if fh.AuxPoW == nil {
		return hb[:]
	}
	a := fh.AuxPoW
	out := make([]byte, 0, HeaderSize+len(a.CoinbaseTx.Raw)+
		32*(len(a.CoinbaseBranch)+len(a.ChainBranch))+140)
	out = append(out, hb[:]...)
	out = append(out, a.CoinbaseTx.Raw...)
	out = append(out, a.ParentHash[:]...)
	out = appendBranch(out, a.CoinbaseBranch)
	out = binary.LittleEndian.AppendUint32(out, uint32(a.CoinbaseIndex))
	out = appendBranch(out, a.ChainBranch)
	out = binary.LittleEndian.AppendUint32(out, uint32(a.ChainIndex))
	ph := a.ParentHeader.Serialize()
	return append(out, ph[:]...)
}

func appendBranch(out []byte, br []chainhash.Hash) []byte {
	out = AppendVarInt(out, uint64(len(br)))
	for i := range br {
		out = append(out, br[i][:]...)
	}
	return out
}

// reader is a bounds-checked cursor over a byte slice.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || r.remaining() < n {
		return nil, fmt.Errorf("%w: need %d bytes at offset %d, have %d",
			ErrMalformed, n, r.off, r.remaining())
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) uint32() (uint32, error) {
	s, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (r *reader) uint64() (uint64, error) {
	s, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (r *reader) hash(h *chainhash.Hash) error {
	s, err := r.bytes(32)
	if err != nil {
		return err
	}
	copy(h[:], s)
	return nil
}

// varInt reads a Bitcoin CompactSize, rejecting non-canonical encodings as
// Core's ReadCompactSize does.
func (r *reader) varInt() (uint64, error) {
	s, err := r.bytes(1)
	if err != nil {
		return 0, err
	}
	var size int
	var minV uint64
	switch s[0] {
	case 0xfd:
		size, minV = 2, 0xfd
	case 0xfe:
		size, minV = 4, 0x10000
	case 0xff:
		size, minV = 8, 0x100000000
	default:
		return uint64(s[0]), nil
	}
	if s, err = r.bytes(size); err != nil {
		return 0, err
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	if v < minV {
		return 0, fmt.Errorf("%w: non-canonical compact size %d", ErrMalformed, v)
	}
	return v, nil
}

// count reads a CompactSize element count and refuses one that the rest of
// the input could not hold at minSize bytes per element, so that hostile
// input cannot make us allocate.
func (r *reader) count(minSize int) (int, error) {
	n, err := r.varInt()
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()/minSize) {
		return 0, fmt.Errorf("%w: count %d cannot fit in %d bytes",
			ErrMalformed, n, r.remaining())
	}
	return int(n), nil
}

func (r *reader) branch() ([]chainhash.Hash, error) {
	n, err := r.count(32)
	if err != nil {
		return nil, err
	}
	br := make([]chainhash.Hash, n)
	for i := range br {
		copy(br[i][:], r.b[r.off:r.off+32])
		r.off += 32
	}
	return br, nil
}

// AppendVarInt appends v as a Bitcoin CompactSize.
func AppendVarInt(out []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(out, byte(v))
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(out, 0xfd), uint16(v))
	case v <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(out, 0xfe), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(out, 0xff), v)
}
