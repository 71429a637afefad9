package headers

import (
	"math/big"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Params are the header consensus parameters of one Namecoin network, as set
// in Namecoin Core's src/kernel/chainparams.cpp.
type Params struct {
	Name string

	// GenesisHeader is the 80-byte genesis header; GenesisHash its hash.
	GenesisHeader Header
	GenesisHash   chainhash.Hash

	// PowLimit is the easiest target allowed; PowLimitBits its compact form.
	PowLimit     *big.Int
	PowLimitBits uint32

	TargetTimespan int64 // seconds per retarget period
	TargetSpacing  int64 // seconds per block
	// RetargetInterval is the number of blocks per difficulty period.
	RetargetInterval int32

	// AllowMinDifficulty enables testnet's minimum-difficulty blocks for
	// blocks whose time is after MinDifficultySince.
	AllowMinDifficulty  bool
	MinDifficultySince  int64
	NoRetargeting       bool
	AuxPoWChainID       int32
	AuxPoWStartHeight   int32
	StrictChainID       bool
	LegacyBlocksBefore  int32 // negative: legacy blocks are always allowed
	BIP34Height         int32 // base version >= 2 from here
	BIP66Height         int32 // base version >= 3 from here
	BIP65Height         int32 // base version >= 4 from here
	MaxFutureBlockTime  int64 // seconds a header may be ahead of now
	MedianTimeSpan      int   // blocks in the median-time-past window
	NameExpirationDepth int32 // blocks after which a name expires (at the tip)
	// NameExpirationRamp: before height 48000 the depth ramps up from
	// 12000 (Core's MainNetConsensus, which TestNetConsensus inherits).
	NameExpirationRamp bool
}

// MainNetParams are Namecoin mainnet's parameters.
var MainNetParams = Params{
	Name: "mainnet",
	GenesisHeader: Header{
		Version:    1,
		MerkleRoot: mustHash("41c62dbd9068c89a449525e3cd5ac61b20ece28c3c38b3f35b2161f0e6d3cb0d"),
		Timestamp:  1303000001,
		Bits:       0x1c007fff,
		Nonce:      0xa21ea192,
	},
	GenesisHash:         mustHash("000000000062b72c5e2ceb45fbc8587e807c155b0da735e6483dfba2f0a9c770"),
	PowLimit:            mustBig("00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	PowLimitBits:        0x1d00ffff,
	TargetTimespan:      14 * 24 * 60 * 60,
	TargetSpacing:       10 * 60,
	RetargetInterval:    2016,
	AuxPoWChainID:       1,
	AuxPoWStartHeight:   19200,
	StrictChainID:       true,
	LegacyBlocksBefore:  19200,
	BIP34Height:         250000,
	BIP66Height:         250000,
	BIP65Height:         335000,
	MaxFutureBlockTime:  2 * 60 * 60,
	MedianTimeSpan:      11,
	NameExpirationDepth: 36000,
	NameExpirationRamp:  true,
}

// TestNetParams are Namecoin testnet's parameters.
var TestNetParams = Params{
	Name: "testnet",
	GenesisHeader: Header{
		Version:    1,
		MerkleRoot: mustHash("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"),
		Timestamp:  1296688602,
		Bits:       0x1d07fff8,
		Nonce:      0x16ec0bff,
	},
	GenesisHash:         mustHash("00000007199508e34a9ff81e6ec0c477a4cccff2a4767a8eee39c11db367b008"),
	PowLimit:            mustBig("0000000fffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	PowLimitBits:        0x1d0fffff,
	TargetTimespan:      14 * 24 * 60 * 60,
	TargetSpacing:       10 * 60,
	RetargetInterval:    2016,
	AllowMinDifficulty:  true,
	MinDifficultySince:  1394838000,
	AuxPoWChainID:       1,
	AuxPoWStartHeight:   0,
	StrictChainID:       false,
	LegacyBlocksBefore:  -1,
	BIP34Height:         130000,
	BIP66Height:         130000,
	BIP65Height:         130000,
	MaxFutureBlockTime:  2 * 60 * 60,
	MedianTimeSpan:      11,
	NameExpirationDepth: 36000,
	NameExpirationRamp:  true,
}

// RegTestParams are Namecoin regtest's parameters. Every block but genesis
// carries AuxPoW, and names expire after 30 blocks.
var RegTestParams = Params{
	Name: "regtest",
	GenesisHeader: Header{
		Version:    1,
		MerkleRoot: mustHash("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"),
		Timestamp:  1296688602,
		Bits:       0x207fffff,
		Nonce:      2,
	},
	GenesisHash:         mustHash("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"),
	PowLimit:            mustBig("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	PowLimitBits:        0x207fffff,
	TargetTimespan:      14 * 24 * 60 * 60,
	TargetSpacing:       10 * 60,
	RetargetInterval:    2016,
	AllowMinDifficulty:  true,
	MinDifficultySince:  0,
	NoRetargeting:       true,
	AuxPoWChainID:       1,
	AuxPoWStartHeight:   0,
	StrictChainID:       true,
	LegacyBlocksBefore:  0,
	BIP34Height:         1,
	BIP66Height:         1,
	BIP65Height:         1,
	MaxFutureBlockTime:  2 * 60 * 60,
	MedianTimeSpan:      11,
	NameExpirationDepth: 30,
}

// ParamsByName returns the parameters of "mainnet", "testnet" or "regtest".
func ParamsByName(name string) (*Params, bool) {
	switch name {
	case "mainnet", "main":
		return &MainNetParams, true
	case "testnet", "test":
		return &TestNetParams, true
	case "regtest":
		return &RegTestParams, true
	}
	return nil, false
}

// NameExpirationDepthAt is how many blocks after its last update a name
// expires, measured at chain height h (Core's NameExpirationDepth). Mainnet
// and testnet ramped from 12000 to 36000 between heights 24000 and 48000.
func (p *Params) NameExpirationDepthAt(h int32) int32 {
	if p.NameExpirationRamp {
		switch {
		case h < 24000:
			return 12000
		case h < 48000:
			return h - 12000
		}
	}
	return p.NameExpirationDepth
}

// AllowLegacyBlocks reports whether a version-1 header is valid at height.
func (p *Params) AllowLegacyBlocks(height int32) bool {
	return p.LegacyBlocksBefore < 0 || height < p.LegacyBlocksBefore
}

func mustHash(s string) chainhash.Hash {
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		panic(err)
	}
	return *h
}

func mustBig(hexStr string) *big.Int {
	n, ok := new(big.Int).SetString(hexStr, 16)
	if !ok {
		panic("bad hex constant " + hexStr)
	}
	return n
}
