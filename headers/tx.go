package headers

import (
	"crypto/sha256"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// NamecoinTxVersion is the version name transactions must carry.
const NamecoinTxVersion = 0x7100

// OutPoint names a transaction output.
type OutPoint struct {
	Hash  chainhash.Hash
	Index uint32
}

// TxIn is a transaction input. Slices point into the parsed bytes.
type TxIn struct {
	PreviousOutPoint OutPoint
	SignatureScript  []byte
	Sequence         uint32
	Witness          [][]byte
}

// TxOut is a transaction output. PkScript points into the parsed bytes.
type TxOut struct {
	Value    int64
	PkScript []byte
}

// Tx is a decoded transaction. It keeps its raw bytes so that the txid can
// be computed over the non-witness serialization without re-encoding.
type Tx struct {
	Version  int32
	TxIn     []TxIn
	TxOut    []TxOut
	LockTime uint32
	// Raw is the transaction exactly as parsed, witness included.
	Raw []byte

	// Offsets for the txid: with witness data, the txid covers version,
	// Raw[witFlagEnd:witStart] (inputs and outputs) and the lock time.
	hasWitness bool
	witFlagEnd int
	witStart   int
}

// HasWitness reports whether the transaction was serialized with witness
// data.
func (tx *Tx) HasWitness() bool { return tx.hasWitness }

// TxID is SHA256d of the serialization without witness data.
func (tx *Tx) TxID() chainhash.Hash {
	if !tx.hasWitness {
		return chainhash.DoubleHashH(tx.Raw)
	}
	h := sha256.New()
	h.Write(tx.Raw[:4])
	h.Write(tx.Raw[tx.witFlagEnd:tx.witStart])
	h.Write(tx.Raw[len(tx.Raw)-4:])
	var first [32]byte
	h.Sum(first[:0])
	return chainhash.Hash(sha256.Sum256(first[:]))
}

// Minimum serialized sizes, used to bound counts before allocating.
const (
	minTxInSize  = 32 + 4 + 1 + 4 // outpoint, empty script, sequence
	minTxOutSize = 8 + 1          // value, empty script
	minTxSize    = 4 + 1 + 1 + 4  // version, two empty vectors, lock time
)

// ParseTx decodes one transaction from the start of b, following Core's
// rules for the extended (segwit) format, and returns how many bytes it
// used. A flag byte other than 1, or a witness flag with only empty
// witnesses, is rejected as Core rejects it.
func ParseTx(b []byte) (*Tx, int, error) {
	return parseTx(b, true)
}

// parseTx is ParseTx; without decodeOutputs the outputs are checked for
// framing but not decoded (TxOut stays nil), which is all an AuxPoW
// coinbase needs and saves most of its parsing cost.
func parseTx(b []byte, decodeOutputs bool) (*Tx, int, error) {
	if len(b) < minTxSize {
		return nil, 0, fmt.Errorf("%w: %d bytes is shorter than any transaction",
			ErrMalformed, len(b))
	}
	r := reader{b: b}
	tx := &Tx{}
	v, _ := r.uint32()
	tx.Version = int32(v)

	var err error
	if tx.TxIn, err = r.txIns(); err != nil {
		return nil, 0, err
	}
	flags := byte(0)
	if len(tx.TxIn) == 0 {
		// An empty input vector is the segwit marker; the flag follows.
		f, err := r.bytes(1)
		if err != nil {
			return nil, 0, err
		}
		flags = f[0]
		if flags != 0 {
			tx.witFlagEnd = r.off
			if tx.TxIn, err = r.txIns(); err != nil {
				return nil, 0, err
			}
			if tx.TxOut, err = r.txOuts(decodeOutputs); err != nil {
				return nil, 0, err
			}
		}
	} else if tx.TxOut, err = r.txOuts(decodeOutputs); err != nil {
		return nil, 0, err
	}
	if flags&1 != 0 {
		flags ^= 1
		tx.witStart = r.off
		witnessSeen := false
		for i := range tx.TxIn {
			n, err := r.count(1)
			if err != nil {
				return nil, 0, fmt.Errorf("witness %d: %w", i, err)
			}
			if n == 0 {
				continue
			}
			stack := make([][]byte, n)
			for j := range stack {
				l, err := r.count(1)
				if err != nil {
					return nil, 0, fmt.Errorf("witness %d item %d: %w", i, j, err)
				}
				stack[j], _ = r.bytes(l)
			}
			tx.TxIn[i].Witness = stack
			witnessSeen = true
		}
		if !witnessSeen {
			return nil, 0, fmt.Errorf("%w: superfluous witness record", ErrMalformed)
		}
		tx.hasWitness = true
	}
	if flags != 0 {
		return nil, 0, fmt.Errorf("%w: unknown transaction optional data (flags %#x)",
			ErrMalformed, flags)
	}
	if tx.LockTime, err = r.uint32(); err != nil {
		return nil, 0, err
	}
	tx.Raw = b[:r.off:r.off]
	return tx, r.off, nil
}

func (r *reader) txIns() ([]TxIn, error) {
	n, err := r.count(minTxInSize)
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	ins := make([]TxIn, n)
	for i := range ins {
		in := &ins[i]
		if err := r.hash(&in.PreviousOutPoint.Hash); err != nil {
			return nil, err
		}
		if in.PreviousOutPoint.Index, err = r.uint32(); err != nil {
			return nil, err
		}
		l, err := r.count(1)
		if err != nil {
			return nil, fmt.Errorf("input %d script: %w", i, err)
		}
		in.SignatureScript, _ = r.bytes(l)
		if in.Sequence, err = r.uint32(); err != nil {
			return nil, err
		}
	}
	return ins, nil
}

func (r *reader) txOuts(decode bool) ([]TxOut, error) {
	n, err := r.count(minTxOutSize)
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	var outs []TxOut
	if decode {
		outs = make([]TxOut, n)
	}
	for i := 0; i < n; i++ {
		v, err := r.uint64()
		if err != nil {
			return nil, err
		}
		l, err := r.count(1)
		if err != nil {
			return nil, fmt.Errorf("output %d script: %w", i, err)
		}
		script, _ := r.bytes(l)
		if decode {
			outs[i] = TxOut{Value: int64(v), PkScript: script}
		}
	}
	return outs, nil
}
