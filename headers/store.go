package headers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Store errors, matched with errors.Is.
var (
	// ErrDatabaseInUse: another process holds the database open.
	ErrDatabaseInUse = errors.New("header database is in use by another process")
	// ErrWrongNetwork: the database was made for another network.
	ErrWrongNetwork = errors.New("header database belongs to another network")
	// ErrDoesNotConnect: the headers do not build on a stored header.
	ErrDoesNotConnect = errors.New("headers do not connect to the stored chain")
	// ErrNotMoreWork: a competing branch has no more work than ours.
	ErrNotMoreWork = errors.New("competing branch does not have more work")
	// ErrForkTooDeep: the fork point is below the oldest stored header.
	ErrForkTooDeep = errors.New("fork point is below the oldest stored header")
	// ErrHeightNotFound: no stored header at that height.
	ErrHeightNotFound = errors.New("no stored header at that height")
	// ErrCorrupt: the database breaks an invariant the store keeps.
	ErrCorrupt = errors.New("header database is inconsistent")
)

// DefaultKeepHeaders is how many headers pruning keeps by default: a whole
// name expiry window (36000 blocks) plus one retarget period.
const DefaultKeepHeaders = 36000 + 2016

// StoreOptions tune OpenStore.
type StoreOptions struct {
	// LockTimeout is how long to wait for another process to release the
	// database before failing with ErrDatabaseInUse (default 1s).
	LockTimeout time.Duration
	// KeepHeaders is how many headers below the tip pruning keeps; it
	// cannot be less than what retargeting and median time need.
	KeepHeaders int32
	// NoSync skips fsync on commit. Only for benchmarks and tests: a crash
	// can then lose committed headers (never corrupt them).
	NoSync bool
}

// Anchor is the trusted block a new store starts from: genesis, or a
// checkpoint's period end (whose header bytes may be unknown).
type Anchor struct {
	Info BlockInfo
	// Work is the total chain work up to and including this block.
	Work *big.Int
	// Header is the full header when known (genesis).
	Header *Header
}

// GenesisAnchor starts a store at the network's genesis.
func (p *Params) GenesisAnchor() Anchor {
	h := p.GenesisHeader
	return Anchor{Info: p.GenesisInfo(), Work: CalcWork(h.Bits), Header: &h}
}

// Tip is the best stored block.
type Tip struct {
	Height int32
	Hash   chainhash.Hash
	Work   *big.Int
}

// Store keeps the best header chain in bbolt: 80-byte headers (AuxPoW is
// dropped once verified) by height, a hash index, the tip and cumulative
// work. Every change is one bbolt transaction, so a crash leaves the chain
// as of the last commit. Safe for concurrent use.
type Store struct {
	db     *bolt.DB
	params *Params
	keep   int32

	mu  sync.RWMutex // guards tip and base, mirrors of what is committed
	tip Tip
	// base is the oldest stored height.
	base int32
	// anchor is the block the store started from. Headers below it (the
	// ancestors a checkpoint anchor's median time needs) are proven, not
	// chosen by work: no branch may fork below the anchor.
	anchor int32
	// verif mirrors the committed verification state.
	verif Verification

	workMu    sync.Mutex
	workCache map[uint32]*big.Int
}

var (
	bucketHeaders = []byte("headers") // height (4 BE) -> record
	bucketMeta    = []byte("meta")
	// bucketIndexV1 (hash -> height) existed in format 1. Nothing read it,
	// and its random keys cost a third of every commit and most of the
	// database's resident pages, so format 2 drops it.
	bucketIndexV1 = []byte("index")
	keyNetwork    = []byte("network") // genesis hash
	keyTip        = []byte("tip")     // height
	keyBase       = []byte("base")    // height
	keyAnchor     = []byte("anchor")  // height; absent before format 2 stores gained it
	keyFormat     = []byte("format")
)

const storeFormat = 2

// Record layout: hash 32 | work 32 | time 4 | bits 4 | next bits 4 |
// last normal bits 4 | header 80 (absent for a checkpoint anchor).
const (
	recInfoSize = 32 + 32 + 16
	recFullSize = recInfoSize + HeaderSize
)

// OpenStore opens or creates the header database at path. A new database
// starts at anchor; an existing one must belong to p's network.
func OpenStore(path string, p *Params, anchor Anchor, opts StoreOptions) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	minKeep := int32(p.MedianTimeSpan) + p.RetargetInterval + 1
	switch {
	case opts.KeepHeaders == 0:
		opts.KeepHeaders = DefaultKeepHeaders
	case opts.KeepHeaders < minKeep:
		return nil, fmt.Errorf("keep %d headers: at least %d are needed for retargeting",
			opts.KeepHeaders, minKeep)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		NoSync:  opts.NoSync,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrDatabaseInUse, path, opts.LockTimeout)
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open header database %s: %w", path, err)
	}
	s := &Store{db: db, params: p, keep: opts.KeepHeaders,
		workCache: map[uint32]*big.Int{}}
	if err := db.Update(func(tx *bolt.Tx) error { return s.init(tx, anchor) }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(tx *bolt.Tx, anchor Anchor) error {
	for _, name := range [][]byte{bucketHeaders, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if net := meta.Get(keyNetwork); net != nil {
		if !bytes.Equal(net, s.params.GenesisHash[:]) {
			return fmt.Errorf("%w: made for genesis %x, opened as %s",
				ErrWrongNetwork, net, s.params.Name)
		}
		f := meta.Get(keyFormat)
		if len(f) != 4 {
			return fmt.Errorf("%w: unknown format %x", ErrCorrupt, f)
		}
		switch binary.BigEndian.Uint32(f) {
		case storeFormat:
		case 1:
			// The same records, plus the index: drop it.
			if tx.Bucket(bucketIndexV1) != nil {
				if err := tx.DeleteBucket(bucketIndexV1); err != nil {
					return err
				}
			}
			if err := meta.Put(keyFormat, be32(storeFormat)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unknown format %x", ErrCorrupt, f)
		}
		return s.loadTip(tx)
	}
	if anchor.Work == nil {
		return errors.New("new header database needs an anchor with chain work")
	}
	if err := meta.Put(keyNetwork, s.params.GenesisHash[:]); err != nil {
		return err
	}
	if err := meta.Put(keyFormat, be32(storeFormat)); err != nil {
		return err
	}
	if _, err := putRecord(tx, anchor.Info, anchor.Work, anchor.Header, nil); err != nil {
		return err
	}
	if err := meta.Put(keyBase, be32(uint32(anchor.Info.Height))); err != nil {
		return err
	}
	if err := meta.Put(keyAnchor, be32(uint32(anchor.Info.Height))); err != nil {
		return err
	}
	if err := meta.Put(keyTip, be32(uint32(anchor.Info.Height))); err != nil {
		return err
	}
	return s.loadTip(tx)
}

func (s *Store) loadTip(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	tipH, baseH := meta.Get(keyTip), meta.Get(keyBase)
	if len(tipH) != 4 || len(baseH) != 4 {
		return fmt.Errorf("%w: tip or base missing", ErrCorrupt)
	}
	height := int32(binary.BigEndian.Uint32(tipH))
	rec, err := getRecord(tx, height)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tip = Tip{Height: height, Hash: rec.info.Hash, Work: rec.work}
	s.base = int32(binary.BigEndian.Uint32(baseH))
	s.anchor = storedAnchor(meta)
	s.verif = readVerification(meta)
	s.mu.Unlock()
	return nil
}

// storedAnchor is the anchor height; a store written before it was kept
// never held anything below its anchor, so its base is at or above it.
func storedAnchor(meta *bolt.Bucket) int32 {
	if v := meta.Get(keyAnchor); len(v) == 4 {
		return int32(binary.BigEndian.Uint32(v))
	}
	return int32(binary.BigEndian.Uint32(meta.Get(keyBase)))
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Params returns the store's network.
func (s *Store) Params() *Params { return s.params }

// Tip returns the best stored block.
func (s *Store) Tip() Tip {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tip
	t.Work = new(big.Int).Set(t.Work)
	return t
}

// Base returns the oldest stored height: the anchor or the ancestors below
// it that AddAncestors stored, or the prune point.
func (s *Store) Base() int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.base
}

// ForkFloor is the lowest height a competing branch may fork from: the
// anchor, or the base once pruning has passed it.
func (s *Store) ForkFloor() int32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return max(s.base, s.anchor)
}

type record struct {
	info   BlockInfo
	work   *big.Int
	header *Header
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// putRecord writes one record and its index entry. buf, if long enough,
// holds the key and value (bbolt needs them until the commit), so that a
// chunk costs one allocation instead of two per header.
func putRecord(tx *bolt.Tx, info BlockInfo, work *big.Int, h *Header, buf []byte) ([]byte, error) {
	size := recInfoSize
	if h != nil {
		size = recFullSize
	}
	if len(buf) < 4+size {
		buf = make([]byte, 4+size)
	}
	key, v := buf[:4:4], buf[4:4+size:4+size]
	binary.BigEndian.PutUint32(key, uint32(info.Height))
	copy(v[0:32], info.Hash[:])
	work.FillBytes(v[32:64])
	binary.BigEndian.PutUint32(v[64:68], info.Time)
	binary.BigEndian.PutUint32(v[68:72], info.Bits)
	binary.BigEndian.PutUint32(v[72:76], info.NextBits)
	binary.BigEndian.PutUint32(v[76:80], info.LastNormalBits)
	if h != nil {
		hb := h.Serialize()
		copy(v[recInfoSize:], hb[:])
	}
	hb := tx.Bucket(bucketHeaders)
	// Heights only grow at the end of the bucket: full pages on split
	// instead of half-full ones (bbolt's default suits random keys).
	hb.FillPercent = 1.0
	if err := hb.Put(key, v); err != nil {
		return nil, err
	}
	return buf[4+size:], nil
}

func decodeRecord(height int32, v []byte) (record, error) {
	if len(v) != recInfoSize && len(v) != recFullSize {
		return record{}, fmt.Errorf("%w: record at %d has %d bytes", ErrCorrupt, height, len(v))
	}
	r := record{
		info: BlockInfo{
			Height:         height,
			Time:           binary.BigEndian.Uint32(v[64:68]),
			Bits:           binary.BigEndian.Uint32(v[68:72]),
			NextBits:       binary.BigEndian.Uint32(v[72:76]),
			LastNormalBits: binary.BigEndian.Uint32(v[76:80]),
		},
		work: new(big.Int).SetBytes(v[32:64]),
	}
	copy(r.info.Hash[:], v[0:32])
	if len(v) == recFullSize {
		h, _ := ParseHeader(v[recInfoSize:])
		r.header = &h
	}
	return r, nil
}

func getRecord(tx *bolt.Tx, height int32) (record, error) {
	if height < 0 {
		return record{}, ErrHeightNotFound
	}
	v := tx.Bucket(bucketHeaders).Get(be32(uint32(height)))
	if v == nil {
		return record{}, fmt.Errorf("%w: %d", ErrHeightNotFound, height)
	}
	return decodeRecord(height, v)
}

// BlockAt implements ChainContext over the stored main chain.
func (s *Store) BlockAt(height int32) (BlockInfo, bool) {
	var info BlockInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, height)
		info = r.info
		return err
	})
	return info, err == nil
}

// HeaderAt returns the 80-byte header at height. A checkpoint anchor has
// no header bytes and gives ErrHeightNotFound.
func (s *Store) HeaderAt(height int32) (Header, error) {
	var h Header
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, height)
		if err != nil {
			return err
		}
		if r.header == nil {
			return fmt.Errorf("%w: %d is a checkpoint without header bytes",
				ErrHeightNotFound, height)
		}
		h = *r.header
		return nil
	})
	return h, err
}

// WorkAt returns the cumulative chain work up to height.
func (s *Store) WorkAt(height int32) (*big.Int, error) {
	var w *big.Int
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, height)
		w = r.work
		return err
	})
	return w, err
}

func (s *Store) blockWork(bits uint32) *big.Int {
	s.workMu.Lock()
	defer s.workMu.Unlock()
	w, ok := s.workCache[bits]
	if !ok {
		w = CalcWork(bits)
		s.workCache[bits] = w
	}
	return w
}

// AddHeaders verifies full headers that follow the stored block at
// start-1 and commits them: an extension of the tip, or a competing branch
// that replaces the blocks from start on if it has more work.
func (s *Store) AddHeaders(start int32, hdrs []*FullHeader, now time.Time) error {
	return s.AddPrechecked(start, Precheck(hdrs, s.params), now)
}

// AddPrechecked is AddHeaders for headers already through Precheck, so
// that a caller holding many need not keep their AuxPoW.
func (s *Store) AddPrechecked(start int32, pcs []Prechecked, now time.Time) error {
	if len(pcs) == 0 {
		return nil
	}
	prev, err := s.blockBelow(start)
	if err != nil {
		return err
	}
	vh, err := VerifyPrechecked(s, prev, pcs, now, s.params)
	if err != nil {
		return err
	}
	return s.Connect(vh)
}

// blockBelow is the stored block new headers from start must build on.
func (s *Store) blockBelow(start int32) (BlockInfo, error) {
	if floor := s.ForkFloor(); start-1 < floor {
		return BlockInfo{}, fmt.Errorf("%w: block %d (branches may fork from %d up)", ErrForkTooDeep, start-1, floor)
	}
	prev, ok := s.BlockAt(start - 1)
	if !ok {
		return BlockInfo{}, fmt.Errorf("%w: nothing stored at %d", ErrDoesNotConnect, start-1)
	}
	return prev, nil
}

// Connect commits verified headers in one transaction. They must link to
// the stored block below the first of them. If they overlap the stored
// chain, headers equal to the stored ones are skipped; a differing branch
// replaces ours only with more total work, and the old blocks are removed
// in the same transaction that writes the new ones.
func (s *Store) Connect(vh []VerifiedHeader) error {
	if len(vh) == 0 {
		return nil
	}
	var newTip Tip
	var newBase int32
	var newVerif Verification
	unchecked := false
	for i := range vh {
		unchecked = unchecked || vh[i].Unchecked
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		tipH := int32(binary.BigEndian.Uint32(meta.Get(keyTip)))
		base := int32(binary.BigEndian.Uint32(meta.Get(keyBase)))
		floor := max(base, storedAnchor(meta))
		start := vh[0].Info.Height

		// Skip what we already have.
		for len(vh) > 0 && start <= tipH {
			r, err := getRecord(tx, start)
			if err != nil || r.info.Hash != vh[0].Info.Hash {
				break
			}
			vh = vh[1:]
			start++
		}
		if len(vh) == 0 {
			return errNothingNew
		}
		if start-1 < floor {
			return fmt.Errorf("%w: fork at %d, branches may fork from %d up", ErrForkTooDeep, start-1, floor)
		}
		if start > tipH+1 {
			return fmt.Errorf("%w: first height %d, tip %d", ErrDoesNotConnect, start, tipH)
		}
		prev, err := getRecord(tx, start-1)
		if err != nil {
			return err
		}
		if vh[0].Header.PrevBlock != prev.info.Hash {
			return fmt.Errorf("%w: header %d builds on %v, stored %d is %v",
				ErrDoesNotConnect, start, vh[0].Header.PrevBlock, start-1, prev.info.Hash)
		}
		work := new(big.Int).Set(prev.work)
		for i := range vh {
			if i > 0 && vh[i].Header.PrevBlock != vh[i-1].Info.Hash {
				return fmt.Errorf("%w: header %d does not link to %d",
					ErrDoesNotConnect, vh[i].Info.Height, vh[i-1].Info.Height)
			}
			work.Add(work, s.blockWork(vh[i].Header.Bits))
		}
		if start <= tipH {
			old, err := getRecord(tx, tipH)
			if err != nil {
				return err
			}
			if work.Cmp(old.work) <= 0 {
				return fmt.Errorf("%w: branch from %d has work %v, ours %v",
					ErrNotMoreWork, start, work, old.work)
			}
			if err := deleteRange(tx, start, tipH); err != nil {
				return err
			}
		}
		buf := make([]byte, len(vh)*(4+recFullSize))
		work.Set(prev.work)
		for i := range vh {
			work.Add(work, s.blockWork(vh[i].Header.Bits))
			if buf, err = putRecord(tx, vh[i].Info, work, &vh[i].Header, buf); err != nil {
				return err
			}
		}
		last := vh[len(vh)-1].Info
		if err := meta.Put(keyTip, be32(uint32(last.Height))); err != nil {
			return err
		}
		newTip = Tip{Height: last.Height, Hash: last.Hash, Work: work}
		newBase = base
		newVerif = readVerification(meta).afterConnect(start, last.Height, unchecked)
		if err := writeVerification(meta, newVerif); err != nil {
			return err
		}
		// Prune in batches so that not every append rewrites the base.
		// Headers whose work is still unchecked stay, with the checked
		// one below them that their background check starts from.
		if last.Height-base+1 > s.keep+s.params.RetargetInterval {
			newBase = last.Height - s.keep + 1
			if newVerif.Gap {
				newBase = min(newBase, newVerif.Low)
			}
		}
		if newBase > base {
			if err := deleteRange(tx, base, newBase-1); err != nil {
				return err
			}
			if err := meta.Put(keyBase, be32(uint32(newBase))); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errNothingNew) {
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tip, s.base, s.verif = newTip, newBase, newVerif
	s.mu.Unlock()
	s.dropMappedPages()
	return nil
}

var errNothingNew = errors.New("nothing new")

// AddAncestors stores the headers that end at the base: hdrs[len-1] must
// be the base block itself (a checkpoint anchor, whose header bytes the
// store did not have) and each must link to the one after it. The caller
// has proven them (a cp_height proof each); they give the median time
// past of the first blocks after the anchor the history Core uses.
func (s *Store) AddAncestors(hdrs []Header) error {
	if len(hdrs) == 0 {
		return nil
	}
	var newBase int32
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		base := int32(binary.BigEndian.Uint32(meta.Get(keyBase)))
		low := base - int32(len(hdrs)) + 1
		if low < 0 {
			return fmt.Errorf("%d ancestors of block %d reach below genesis", len(hdrs)-1, base)
		}
		top, err := getRecord(tx, base)
		if err != nil {
			return err
		}
		last := &hdrs[len(hdrs)-1]
		if got := last.BlockHash(); got != top.info.Hash {
			return fmt.Errorf("%w: header %v is not the stored block %d %v",
				ErrDoesNotConnect, got, base, top.info.Hash)
		}
		for i := len(hdrs) - 1; i > 0; i-- {
			if hdrs[i].PrevBlock != hdrs[i-1].BlockHash() {
				return fmt.Errorf("%w: ancestor %d does not link to %d",
					ErrDoesNotConnect, low+int32(i), low+int32(i)-1)
			}
		}
		// The base keeps its record (the checkpoint's next bits) and
		// gains its header; the work below it is what its blocks add.
		info := top.info
		info.Bits = last.Bits
		if _, err := putRecord(tx, info, top.work, last, nil); err != nil {
			return err
		}
		work := new(big.Int).Set(top.work)
		for i := len(hdrs) - 2; i >= 0; i-- {
			if work.Sub(work, CalcWork(hdrs[i+1].Bits)).Sign() <= 0 {
				return fmt.Errorf("%w: the anchor's chain work is less than its ancestors'", ErrCorrupt)
			}
			h := &hdrs[i]
			info := BlockInfo{Height: low + int32(i), Hash: h.BlockHash(),
				Time: h.Timestamp, Bits: h.Bits, LastNormalBits: h.Bits}
			if _, err := putRecord(tx, info, work, h, nil); err != nil {
				return err
			}
		}
		if meta.Get(keyAnchor) == nil { // a store from before the key
			if err := meta.Put(keyAnchor, be32(uint32(base))); err != nil {
				return err
			}
		}
		newBase = low
		return meta.Put(keyBase, be32(uint32(low)))
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.base = newBase
	s.mu.Unlock()
	return nil
}

func deleteRange(tx *bolt.Tx, from, to int32) error {
	hb := tx.Bucket(bucketHeaders)
	for h := from; h <= to; h++ {
		// Deleting a missing key is a no-op in bbolt.
		if err := hb.Delete(be32(uint32(h))); err != nil {
			return err
		}
	}
	return nil
}

// CheckIntegrity walks the stored chain and checks every invariant: one
// record per height from base to tip, each header hashing to its record
// and linking to the one below, and the cumulative work adding up.
func (s *Store) CheckIntegrity() error {
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		tipH := int32(binary.BigEndian.Uint32(meta.Get(keyTip)))
		base := int32(binary.BigEndian.Uint32(meta.Get(keyBase)))
		if n := tx.Bucket(bucketHeaders).Stats().KeyN; n != int(tipH-base+1) {
			return fmt.Errorf("%w: %d records for heights %d..%d", ErrCorrupt, n, base, tipH)
		}
		if v := readVerification(meta); v.Gap && (v.Low < base || v.End <= v.Low || v.End > tipH) {
			return fmt.Errorf("%w: unverified headers (%d, %d] outside the chain %d..%d", ErrCorrupt, v.Low, v.End, base, tipH)
		}
		var prev record
		for h := base; h <= tipH; h++ {
			r, err := getRecord(tx, h)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if r.header != nil && r.header.BlockHash() != r.info.Hash {
				return fmt.Errorf("%w: header at %d does not hash to its record", ErrCorrupt, h)
			}
			if h > base {
				if r.header == nil || r.header.PrevBlock != prev.info.Hash {
					return fmt.Errorf("%w: header %d does not link to %d", ErrCorrupt, h, h-1)
				}
				want := new(big.Int).Add(prev.work, CalcWork(r.info.Bits))
				if want.Cmp(r.work) != 0 {
					return fmt.Errorf("%w: work at %d is %v, want %v", ErrCorrupt, h, r.work, want)
				}
			}
			prev = r
		}
		return nil
	})
}
