package headers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	bolt "go.etcd.io/bbolt"
)

// Verification is how far the stored chain's proof of work has been
// checked. A sampled sync stores 80-byte headers whose AuxPoW is checked
// only for a random sample: they form the gap (Low, End]. Below and above
// it every header's proof of work was checked. Without a gap the chain is
// fully verified.
type Verification struct {
	// Gap is set while headers with unchecked proof of work are stored.
	Gap bool
	// Low is the highest checked height below the gap; End the gap's
	// highest height.
	Low, End int32
	// Sampled: a random sample of the gap passed its proof-of-work check.
	// Until it does, the gap's headers are not to be relied on.
	Sampled bool
}

// Mode names the verification state as status and getblockchaininfo
// report it.
func (v Verification) Mode() string {
	switch {
	case !v.Gap:
		return "fully verified"
	case v.Sampled:
		return "sampled"
	default:
		return "unverified"
	}
}

// VerifiedHeight is the height up to which every header's proof of work
// is checked, on a chain whose tip is at tip.
func (v Verification) VerifiedHeight(tip int32) int32 {
	if v.Gap {
		return v.Low
	}
	return tip
}

// ErrVerificationMoved: the gap, or the chain in it, changed since the
// caller read it (a reorg or another sync); the caller reads it again.
var ErrVerificationMoved = errors.New("the stored chain's verification state moved")

var (
	keyGapLow     = []byte("gaplow") // height; absent: no gap
	keyGapEnd     = []byte("gapend") // height
	keyGapSampled = []byte("gapsampled")
)

func readVerification(meta *bolt.Bucket) Verification {
	lo, end := meta.Get(keyGapLow), meta.Get(keyGapEnd)
	if len(lo) != 4 || len(end) != 4 {
		return Verification{}
	}
	s := meta.Get(keyGapSampled)
	return Verification{Gap: true,
		Low:     int32(binary.BigEndian.Uint32(lo)),
		End:     int32(binary.BigEndian.Uint32(end)),
		Sampled: len(s) == 1 && s[0] == 1}
}

func writeVerification(meta *bolt.Bucket, v Verification) error {
	if !v.Gap || v.End <= v.Low {
		for _, k := range [][]byte{keyGapLow, keyGapEnd, keyGapSampled} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
	sampled := []byte{0}
	if v.Sampled {
		sampled[0] = 1
	}
	if err := meta.Put(keyGapLow, be32(uint32(v.Low))); err != nil {
		return err
	}
	if err := meta.Put(keyGapEnd, be32(uint32(v.End))); err != nil {
		return err
	}
	return meta.Put(keyGapSampled, sampled)
}

// afterConnect is the verification state once headers from start to tip
// (the first fork-free height being start) are connected; unchecked says
// whether their proof of work is unchecked.
func (v Verification) afterConnect(start, tip int32, unchecked bool) Verification {
	fork := start - 1
	if unchecked {
		if !v.Gap {
			return Verification{Gap: true, Low: fork, End: tip}
		}
		// Checked headers above the old gap are swallowed: the gap stays
		// one range, and they are checked again in the background.
		return Verification{Gap: true, Low: min(v.Low, fork), End: tip}
	}
	if !v.Gap {
		return v
	}
	if fork < v.End {
		v.End = fork
	}
	if v.End <= v.Low {
		return Verification{}
	}
	return v
}

// Verification returns the stored chain's verification state.
func (s *Store) Verification() Verification {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.verif
}

// updateVerification runs f on the stored state in one transaction and
// stores what it returns.
func (s *Store) updateVerification(f func(tx *bolt.Tx, v Verification) (Verification, error)) error {
	var nv Verification
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		v, err := f(tx, readVerification(meta))
		if err != nil {
			return err
		}
		if v.End <= v.Low {
			v = Verification{}
		}
		nv = v
		return writeVerification(meta, v)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.verif = nv
	s.mu.Unlock()
	return nil
}

// MarkSampled records that a sample of the gap (low, end] passed its
// proof-of-work check. It fails with ErrVerificationMoved if the gap is
// no longer that range.
func (s *Store) MarkSampled(low, end int32) error {
	return s.updateVerification(func(_ *bolt.Tx, v Verification) (Verification, error) {
		if !v.Gap || v.Low != low || v.End != end {
			return v, fmt.Errorf("%w: sampled (%d, %d], gap now %+v", ErrVerificationMoved, low, end, v)
		}
		v.Sampled = true
		return v, nil
	})
}

// MarkVerified records that every header of the gap up to height, the
// last of them hashing to hash, had its proof of work checked. The gap's
// low end moves up to height. It fails with ErrVerificationMoved if height
// is outside the gap or the stored block there is not hash.
func (s *Store) MarkVerified(height int32, hash chainhash.Hash) error {
	return s.updateVerification(func(tx *bolt.Tx, v Verification) (Verification, error) {
		if !v.Gap || height <= v.Low || height > v.End {
			return v, fmt.Errorf("%w: %d is outside the gap %+v", ErrVerificationMoved, height, v)
		}
		r, err := getRecord(tx, height)
		if err != nil {
			return v, err
		}
		if r.info.Hash != hash {
			return v, fmt.Errorf("%w: block %d is no longer %v", ErrVerificationMoved, height, hash)
		}
		v.Low = height
		return v, nil
	})
}

// DropUnverified removes every header above the gap's low end: the gap's
// headers proved to lack the work they claim, and what was stored on top
// of them goes with them. The tip moves down to the gap's low end.
func (s *Store) DropUnverified() error {
	var newTip Tip
	dropped := false
	err := s.updateVerification(func(tx *bolt.Tx, v Verification) (Verification, error) {
		if !v.Gap {
			return v, nil
		}
		meta := tx.Bucket(bucketMeta)
		tipH := int32(binary.BigEndian.Uint32(meta.Get(keyTip)))
		if err := deleteRange(tx, v.Low+1, tipH); err != nil {
			return v, err
		}
		r, err := getRecord(tx, v.Low)
		if err != nil {
			return v, err
		}
		if err := meta.Put(keyTip, be32(uint32(v.Low))); err != nil {
			return v, err
		}
		newTip = Tip{Height: v.Low, Hash: r.info.Hash, Work: r.work}
		dropped = true
		return Verification{}, nil
	})
	if err != nil || !dropped {
		return err
	}
	s.mu.Lock()
	s.tip = newTip
	s.mu.Unlock()
	return nil
}

// WorkSince returns, for each height from from to to, the chain work of
// the blocks from from up to it, for drawing samples weighted by work.
func (s *Store) WorkSince(from, to int32) ([]float64, error) {
	out := make([]float64, 0, max(to-from+1, 0))
	err := s.db.View(func(tx *bolt.Tx) error {
		below, err := getRecord(tx, from-1)
		if err != nil {
			return err
		}
		var w big.Int
		c := tx.Bucket(bucketHeaders).Cursor()
		h := from
		for k, v := c.Seek(be32(uint32(from))); k != nil && h <= to; k, v = c.Next() {
			if int32(binary.BigEndian.Uint32(k)) != h {
				return fmt.Errorf("%w: no record at %d", ErrCorrupt, h)
			}
			r, err := decodeRecord(h, v)
			if err != nil {
				return err
			}
			f, _ := new(big.Float).SetInt(w.Sub(r.work, below.work)).Float64()
			out = append(out, f)
			h++
		}
		if h <= to {
			return fmt.Errorf("%w: %d", ErrHeightNotFound, h)
		}
		return nil
	})
	return out, err
}
