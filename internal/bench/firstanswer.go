// Package bench holds ncspv's benchmark harnesses that the ncspv binary
// runs (ncspv bench); their flags stay in cmd/ncspv.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/checkpoints"
	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
	"github.com/ncspv/ncspv/tor/tortest"
)

// MainnetHeadersSinceCheckpoint is how many headers a fresh install
// syncs from the built-in mainnet checkpoint (block 518111) as of
// 2026-12-01 (cmd/ncspv TestFirstSyncFigure recomputes it).
const MainnetHeadersSinceCheckpoint = 332700

// SimParams are the simulated network's: regtest's genesis and easy proof
// of work limit, so that a chain of mainnet's length can be mined on a
// laptop, with mainnet's retargeting (every 2016 blocks, two weeks) and
// name expiry (36,000 blocks).
func SimParams() *headers.Params {
	p := headers.RegTestParams
	p.Name = "sim"
	p.NoRetargeting = false
	p.AllowMinDifficulty = false
	p.NameExpirationDepth = 36000
	return &p
}

// SimChain is a generated mainnet-shaped chain, served from a checkpoint.
type SimChain struct {
	Params     *headers.Params
	Checkpoint checkpoints.Checkpoint
	Backend    *electrumxtest.Backend
	// Headers is how many headers follow the checkpoint's anchor.
	Headers int
	// Name's newest update is at NameHeight, deep enough to sit in the
	// part of the chain a sampled sync takes in 80-byte form (most names:
	// they are renewed about every 36,000 blocks).
	Name       string
	NameHeight int32
	// AvgHeader is the average full header size after the anchor, bytes.
	AvgHeader float64
	// Retargets is how many times the bits changed after the anchor.
	Retargets int
}

// simAnchor is the last block of the first retarget period: the
// checkpoint the simulated install starts from, as mainnet's starts from
// the end of the period at 518111.
const simAnchor = 2015

// GenerateSim builds a chain of n headers after a checkpoint anchor whose
// parent coinbases make headers average about 1.67 KB (mainnet's
// average), alternating fast and slow periods so that every retarget
// moves the bits. Only the served headers stay in memory.
func GenerateSim(n int, seed uint64) *SimChain {
	p := SimParams()
	g := chaingen.New(p, seed)
	g.MinCoinbase, g.MaxCoinbase = 650, 1650
	b := electrumxtest.NewBackend()
	b.ExpirationDepth = p.NameExpirationDepth
	b.AddBlocks(g.Blocks[0])
	tip := int32(simAnchor + n)
	nameHeight := tip - int32(min(20000, n/2))
	sc := &SimChain{Params: p, Backend: b, Headers: n, Name: "d/first-answer", NameHeight: nameHeight}
	var cpHashes []chainhash.Hash
	cpHeight := int32(simAnchor + 242) // as mainnet's: cp_height 518353, period end 518111
	var total float64
	lastBits := uint32(0)
	for h := int32(1); h <= tip; h++ {
		// The first period runs at the target spacing (the checkpoint's
		// bits are the limit's); later ones alternate at half and twice
		// it, so that each retarget doubles or halves the target.
		switch {
		case h <= simAnchor:
			g.Spacing = uint32(p.TargetSpacing)
		case ((h-simAnchor-1)/p.RetargetInterval)%2 == 0:
			g.Spacing = uint32(p.TargetSpacing / 2)
		default:
			g.Spacing = uint32(p.TargetSpacing * 2)
		}
		var spec chaingen.Spec
		if h == nameHeight {
			spec.Txs = [][]byte{chaingen.NameTx(chaingen.OpFirstUpdate, []byte(sc.Name),
				[]byte(`{"ip":"192.0.2.1","tor":"firstanswerxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"}`), [20]byte{1}, 0, 1)}
		}
		blk := g.Next(spec)
		b.AddBlocks(blk)
		if h > simAnchor {
			total += float64(len(blk.Raw))
			if lastBits != 0 && blk.Info.Bits != lastBits {
				sc.Retargets++
			}
			lastBits = blk.Info.Bits
		}
		// The generator needs only the BlockInfo of old blocks (for
		// retargeting and median time); the backend keeps the bytes.
		if old := int(h) - int(p.RetargetInterval) - 20; old > 0 {
			ob := g.Blocks[old]
			g.Blocks[old] = &chaingen.Block{Height: ob.Height, Hash: ob.Hash, Info: ob.Info}
		}
	}
	b.IndexNames()
	for hgt := int32(0); hgt <= cpHeight; hgt++ {
		cpHashes = append(cpHashes, g.Blocks[hgt].Hash)
	}
	a := g.Blocks[simAnchor]
	sc.Checkpoint = checkpoints.Checkpoint{
		Height: cpHeight, MerkleRoot: headers.MerkleRoot(cpHashes),
		PeriodEnd: simAnchor, PeriodEndHash: a.Hash, PeriodEndTime: a.Info.Time,
		NextBits:  g.Blocks[simAnchor+1].Info.Bits,
		ChainWork: new(big.Int).Mul(headers.CalcWork(p.PowLimitBits), big.NewInt(simAnchor+1)),
	}
	sc.AvgHeader = total / float64(n)
	return sc
}

// Install is how the fresh install syncs and what it syncs from.
type Install struct {
	// Sampled: a sampled sync (else every header in full).
	Sampled bool
	// SplitBug: the server garbles 80-byte header chunks as ElectrumX
	// 1.19 and later do, so a sampled sync takes single headers.
	SplitBug bool
}

// FirstAnswer is one fresh install's way to its first verified name_show.
type FirstAnswer struct {
	Install
	// Bytes crossed the emulated link, both ways, until the answer.
	Bytes int64
	Time  time.Duration
	// Verification is the chain's state at the answer.
	Verification string
	// Samples is how many full headers the sample drew (sampled only).
	Samples int
	Value   string
}

// RunFirstAnswer starts a fresh install (an empty store in dir) behind a
// SOCKS proxy whose connections cross link, against one fake ElectrumX
// 1.20 (padding, small-reply timer) serving sc, and times its first
// name_show of sc.Name, the sync it needs included. The background full
// verification is off: it starts after the first answer and would only
// blur what that answer cost.
func RunFirstAnswer(ctx context.Context, sc *SimChain, link tortest.Link, in Install, dir string, log *slog.Logger) (FirstAnswer, error) {
	srv, err := electrumxtest.NewServer(sc.Backend, electrumxtest.Options{Pad: true, HoldSmall: time.Second,
		EntryCost: time.Millisecond, SplitBug: in.SplitBug})
	if err != nil {
		return FirstAnswer{}, err
	}
	defer srv.Close()
	px, err := tortest.NewProxy()
	if err != nil {
		return FirstAnswer{}, err
	}
	defer px.Close()
	px.SetLink(link)
	px.Route("sim.test:50001", srv.Address().Addr())
	server, _ := electrumx.ParseServer("tcp://sim.test:50001")
	store, err := headers.OpenStore(filepath.Join(dir, "headers.db"), sc.Params, sc.Checkpoint.Anchor(), headers.StoreOptions{})
	if err != nil {
		return FirstAnswer{}, err
	}
	defer store.Close()
	pool := electrumx.NewPool(electrumx.Config{HandshakeTimeout: 30 * time.Second})
	defer pool.Close()
	e, err := spv.New(spv.Config{Params: sc.Params, Addresses: spv.RegTestAddresses, Checkpoint: sc.Checkpoint,
		Store: store, Servers: []electrumx.Server{server}, Pool: pool,
		Router:       tor.NewRouter(tor.Proxy{Network: "tcp", Address: px.Addr()}),
		QueryServers: 1, Confirmations: 12, SampledSync: in.Sampled, NoFullVerify: true, Logger: log})
	if err != nil {
		return FirstAnswer{}, err
	}
	defer e.Close()
	t0 := time.Now()
	r, err := e.NameShow(ctx, []byte(sc.Name), spv.LookupOptions{StreamID: "first-answer"})
	if err != nil {
		return FirstAnswer{}, fmt.Errorf("first name_show: %w", err)
	}
	res := FirstAnswer{Install: in, Time: time.Since(t0), Bytes: px.Relayed(),
		Verification: e.State().Verification, Samples: e.State().Samples, Value: string(r.Value)}
	if r.Height != sc.NameHeight {
		return res, fmt.Errorf("first name_show answered the update at %d, want %d", r.Height, sc.NameHeight)
	}
	return res, nil
}
