package headers

import "fmt"

// ErrorCode identifies one consensus rule a header broke. Callers match it
// with errors.As into a RuleError, or errors.Is against the code itself.
type ErrorCode int

// One code per rule of Namecoin Core's header validation (CheckProofOfWork,
// CAuxPow::check and ContextualCheckBlockHeader), plus the chain link.
const (
	// ErrBadChainID: a non-legacy header's version carries a chain ID other
	// than the network's (Core: "block does not have our chain ID").
	ErrBadChainID ErrorCode = iota

	// ErrAuxPoWVersionMismatch: AuxPoW data present without the 0x100
	// version flag, or the flag set without AuxPoW data.
	ErrAuxPoWVersionMismatch

	// ErrParentHasAuxPoWVersion: the parent block's version has the AuxPoW
	// flag (Core: "auxpow parent block has auxpow version").
	ErrParentHasAuxPoWVersion

	// ErrAuxParentChainID: with a strict chain ID, the parent block carries
	// our own chain ID (Core: "Aux POW parent has our chain ID").
	ErrAuxParentChainID

	// ErrAuxChainBranchTooLong: the chain merkle branch has more than 30
	// hashes.
	ErrAuxChainBranchTooLong

	// ErrAuxCoinbaseNotInParent: the coinbase merkle branch does not lead to
	// the parent block's merkle root.
	ErrAuxCoinbaseNotInParent

	// ErrAuxCoinbaseNoInputs: the parent coinbase has no inputs.
	ErrAuxCoinbaseNoInputs

	// ErrAuxMissingChainRoot: the chain merkle root is not in the parent
	// coinbase's scriptSig.
	ErrAuxMissingChainRoot

	// ErrAuxMultipleMagic: the merged-mining magic fabe6d6d occurs more
	// than once in the scriptSig.
	ErrAuxMultipleMagic

	// ErrAuxMagicNotBeforeRoot: the magic is present but not directly in
	// front of the chain merkle root.
	ErrAuxMagicNotBeforeRoot

	// ErrAuxRootTooLate: without magic, the chain merkle root starts later
	// than byte 20 of the scriptSig.
	ErrAuxRootTooLate

	// ErrAuxMissingSizeNonce: fewer than 8 bytes follow the chain merkle
	// root, so the tree size and nonce are missing.
	ErrAuxMissingSizeNonce

	// ErrAuxWrongMerkleSize: the tree size in the coinbase is not
	// 2^(chain branch length).
	ErrAuxWrongMerkleSize

	// ErrAuxWrongChainIndex: the chain index is not the one derived from the
	// nonce and chain ID (Core's getExpectedIndex).
	ErrAuxWrongChainIndex

	// ErrInvalidBits: the compact target is negative, zero, overflows or is
	// above the network's proof-of-work limit.
	ErrInvalidBits

	// ErrHighHash: the proof-of-work hash (the parent's for AuxPoW, else the
	// block's own) is above the target.
	ErrHighHash

	// ErrLateLegacyBlock: a version-1 header at or above the height where
	// legacy blocks end (Core: "late-legacy-block").
	ErrLateLegacyBlock

	// ErrBadDiffBits: bits differ from the required next work
	// (Core: "bad-diffbits").
	ErrBadDiffBits

	// ErrTimeTooOld: the timestamp is not after the median of the previous
	// 11 blocks (Core: "time-too-old").
	ErrTimeTooOld

	// ErrTimeTooNew: the timestamp is more than two hours ahead of now
	// (Core: "time-too-new").
	ErrTimeTooNew

	// ErrBadVersion: the base version is below what BIP34/66/65 require at
	// this height (Core: "bad-version").
	ErrBadVersion

	// ErrBadPrevBlock: the header does not link to the previous header.
	ErrBadPrevBlock

	// numErrorCodes is the number of codes above, for the stringer test.
	numErrorCodes
)

var errorCodeStrings = map[ErrorCode]string{
	ErrBadChainID:             "ErrBadChainID",
	ErrAuxPoWVersionMismatch:  "ErrAuxPoWVersionMismatch",
	ErrParentHasAuxPoWVersion: "ErrParentHasAuxPoWVersion",
	ErrAuxParentChainID:       "ErrAuxParentChainID",
	ErrAuxChainBranchTooLong:  "ErrAuxChainBranchTooLong",
	ErrAuxCoinbaseNotInParent: "ErrAuxCoinbaseNotInParent",
	ErrAuxCoinbaseNoInputs:    "ErrAuxCoinbaseNoInputs",
	ErrAuxMissingChainRoot:    "ErrAuxMissingChainRoot",
	ErrAuxMultipleMagic:       "ErrAuxMultipleMagic",
	ErrAuxMagicNotBeforeRoot:  "ErrAuxMagicNotBeforeRoot",
	ErrAuxRootTooLate:         "ErrAuxRootTooLate",
	ErrAuxMissingSizeNonce:    "ErrAuxMissingSizeNonce",
	ErrAuxWrongMerkleSize:     "ErrAuxWrongMerkleSize",
	ErrAuxWrongChainIndex:     "ErrAuxWrongChainIndex",
	ErrInvalidBits:            "ErrInvalidBits",
	ErrHighHash:               "ErrHighHash",
	ErrLateLegacyBlock:        "ErrLateLegacyBlock",
	ErrBadDiffBits:            "ErrBadDiffBits",
	ErrTimeTooOld:             "ErrTimeTooOld",
	ErrTimeTooNew:             "ErrTimeTooNew",
	ErrBadVersion:             "ErrBadVersion",
	ErrBadPrevBlock:           "ErrBadPrevBlock",
}

// String returns the code's name.
func (e ErrorCode) String() string {
	if s, ok := errorCodeStrings[e]; ok {
		return s
	}
	return fmt.Sprintf("Unknown ErrorCode (%d)", int(e))
}

// Error lets a bare code be used as a sentinel with errors.Is.
func (e ErrorCode) Error() string { return e.String() }

// RuleError reports a header that breaks a consensus rule. It is the only
// error type the checks in this package return for invalid headers.
type RuleError struct {
	ErrorCode   ErrorCode
	Description string
}

func (e RuleError) Error() string { return e.Description }

// Is makes errors.Is(err, ErrHighHash) work for a wrapped RuleError.
func (e RuleError) Is(target error) bool {
	code, ok := target.(ErrorCode)
	return ok && code == e.ErrorCode
}

func ruleError(c ErrorCode, format string, args ...any) RuleError {
	return RuleError{ErrorCode: c, Description: fmt.Sprintf(format, args...)}
}
