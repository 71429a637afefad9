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
	// IgnoredNameTxs are transactions whose name updates Core does not
	// apply (kernel/chainparams.cpp addBug, every type but
	// BUG_FULLY_APPLY), by txid, with the height they are ignored at.
	IgnoredNameTxs map[chainhash.Hash]int32
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
	IgnoredNameTxs:      mainNetIgnoredNameTxs,
}

// mainNetIgnoredNameTxs are Namecoin Core's historic bugs on mainnet
// (kernel/chainparams.cpp) whose name operations it does not apply.
var mainNetIgnoredNameTxs = map[chainhash.Hash]int32{
	// Name outputs in transactions without the Namecoin version: their
	// NAME_FIRSTUPDATEs were never interpreted.
	mustHash("bff3ed6873e5698b97bf0c28c29302b59588590b747787c7d1ef32decdabe0d1"): 98423,
	mustHash("e9b211007e5cac471769212ca0f47bb066b81966a8e541d44acf0f8a1bd24976"): 98424,
	mustHash("8aa2b0fc7d1033de28e0192526765a72e9df0c635f7305bdc57cb451ed01a4ca"): 98425,
	// Non-Namecoin transactions with only NAME_NEWs.
	mustHash("0ae5e958ff05ad8e273222656d98d076097def6d36f781a627c584b859f4727b"): 98318,
	mustHash("aca8ce46da1bbb9bb8e563880efcd9d6dd18342c446d6f0e3d4b964a990d1c27"): 98321,
	mustHash("c29b0d9d478411462a8ac29946bf6fdeca358a77b4be15cd921567eb66852180"): 98424,
	mustHash("221719b360f0c83fa5b1c26fb6b67c5e74e4e7c6aa3dce55025da6759f5f7060"): 98425,
	mustHash("597370b632efb35d5ed554c634c7af44affa6066f2a87a88046532d4057b46f8"): 193518,
	mustHash("0bb8c7807a9756aefe62c271770b313b31dee73151f515b1ac2066c50eaeeb91"): 195605,
	mustHash("3181930765b970fc43cd31d53fc6fc1da9439a28257d9067c3b5912d23eab01c"): 195639,
	mustHash("e815e7d774937d96a4b265ed4866b7e3dc8d9f2acb8563402e216aba6edd1e9e"): 195639,
	mustHash("cdfe6eda068e09fe760a70bec201feb041b8c660d0e98cbc05c8aa4106eae6ab"): 195639,
	mustHash("1e29e937b2a9e1f18af500371b8714157cf5ac7c95461913e08ce402de64ae75"): 195641,
	mustHash("d44ed6c0fac251931465f9123ada8459ec954cc6c7b648a56c9326ff7b13f552"): 195648,
	mustHash("dd77aea50a189935d0ef36a04856805cd74600a53193c539eb90c1e1c0f9ecac"): 197711,
	mustHash("f31875dfaf94bd3a93cfbed0e22d405d1f2e49b4d0750cb13812adc5e57f1e47"): 204151,
	// libcoin's name stealing (d/bitcoin, then d/wav).
	mustHash("2f034f2499c136a2c5a922ca4be65c1292815c753bbb100a2a26d5ad532c3919"): 139872,
	mustHash("c3e76d5384139228221cce60250397d1b87adf7366086bc8d6b5e6eee03c55c7"): 139936,
}

// IgnoresNameTx reports whether Core ignores the name operations of the
// transaction txid in the block at height.
func (p *Params) IgnoresNameTx(txid chainhash.Hash, height int32) bool {
	h, ok := p.IgnoredNameTxs[txid]
	return ok && h == height
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
