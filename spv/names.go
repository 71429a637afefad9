package spv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Name operations (Namecoin Core's src/script/script.h).
const (
	OpNameNew         = 0x51 // OP_1
	OpNameFirstUpdate = 0x52 // OP_2
	OpNameUpdate      = 0x53 // OP_3

	opPushData1 = 0x4c
	opPushData2 = 0x4d
	opPushData4 = 0x4e
	opNop       = 0x61
	op2Drop     = 0x6d
	opDrop      = 0x75
	opReturn    = 0x6a
)

// MaxNameLength is the longest name Core's consensus rules allow (bytes).
const MaxNameLength = 255

// NameOp is a name operation found in an output script.
type NameOp struct {
	Op    byte
	Name  []byte // FIRSTUPDATE and UPDATE
	Value []byte // FIRSTUPDATE and UPDATE
	// Address is the ordinary script after the name prefix: who holds the
	// name.
	Address []byte
}

// IsAnyUpdate reports NAME_FIRSTUPDATE or NAME_UPDATE, the operations that
// set a value.
func (n *NameOp) IsAnyUpdate() bool {
	return n.Op == OpNameFirstUpdate || n.Op == OpNameUpdate
}

// ParseNameScript reads a name prefix the way Namecoin Core's CNameScript
// does (looser than the canonical templates): the operation, pushes up to
// the first OP_DROP/OP_2DROP/OP_NOP, any run of those, then the address.
// ok is false for a script without a valid name operation.
func ParseNameScript(script []byte) (op NameOp, ok bool) {
	if len(script) == 0 {
		return op, false
	}
	op.Op = script[0]
	if op.Op != OpNameNew && op.Op != OpNameFirstUpdate && op.Op != OpNameUpdate {
		return op, false
	}
	pc := 1
	var args [][]byte
	for {
		if pc >= len(script) {
			return op, false
		}
		code := script[pc]
		if code == opDrop || code == op2Drop || code == opNop {
			break
		}
		if code > opPushData4 {
			return op, false
		}
		data, next, good := readPush(script, pc)
		if !good {
			return op, false
		}
		args = append(args, data)
		pc = next
	}
	op.Address = script[addressStart(script, pc+1)-1:]
	switch op.Op {
	case OpNameNew:
		if len(args) != 1 {
			return op, false
		}
	case OpNameFirstUpdate:
		if len(args) != 3 {
			return op, false
		}
		op.Name, op.Value = args[0], args[2]
	case OpNameUpdate:
		if len(args) != 2 {
			return op, false
		}
		op.Name, op.Value = args[0], args[1]
	}
	return op, true
}

// addressStart is where Core's CNameScript moves its read position after
// the DROP/NOP that ended the arguments (pc is just past it): past any
// further DROPs and NOPs and past the first other operation, data
// included, or to where reading stopped on a cut operation. Core then
// steps back one byte (script/names.cpp), and so the address starts there:
// at the operation itself when it is a plain opcode, at the last byte of
// the data when it is a push.
func addressStart(s []byte, pc int) int {
	for {
		if pc >= len(s) {
			return pc
		}
		code := s[pc]
		if code > opPushData4 {
			pc++
			if code != opDrop && code != op2Drop && code != opNop {
				return pc
			}
			continue
		}
		_, next, ok := readPush(s, pc)
		if !ok {
			return cutPushEnd(s, pc)
		}
		return next
	}
}

// cutPushEnd is where Core's GetOp leaves its position on a push that the
// script cuts short: past the opcode, and past the length bytes if they
// are all there.
func cutPushEnd(s []byte, pc int) int {
	lenBytes := map[byte]int{opPushData1: 1, opPushData2: 2, opPushData4: 4}[s[pc]]
	if pc+1+lenBytes > len(s) {
		return pc + 1
	}
	return pc + 1 + lenBytes
}

// readPush reads the push opcode at pc (0x00-0x4e) and its data.
func readPush(s []byte, pc int) (data []byte, next int, ok bool) {
	code := s[pc]
	pc++
	var n int
	switch {
	case code < opPushData1:
		n = int(code)
	case code == opPushData1:
		if pc+1 > len(s) {
			return nil, 0, false
		}
		n, pc = int(s[pc]), pc+1
	case code == opPushData2:
		if pc+2 > len(s) {
			return nil, 0, false
		}
		n, pc = int(s[pc])|int(s[pc+1])<<8, pc+2
	default: // opPushData4
		if pc+4 > len(s) {
			return nil, 0, false
		}
		v := uint64(s[pc]) | uint64(s[pc+1])<<8 | uint64(s[pc+2])<<16 | uint64(s[pc+3])<<24
		if v > uint64(len(s)) {
			return nil, 0, false
		}
		n, pc = int(v), pc+4
	}
	if pc+n > len(s) {
		return nil, 0, false
	}
	return s[pc : pc+n], pc + n, true
}

// pushData encodes data as ElectrumX's push_data does: always a length
// prefix (never OP_1..OP_16 for one byte, unlike Electrum-NMC's minimal
// pushes).
func pushData(out, data []byte) []byte {
	switch n := len(data); {
	case n < opPushData1:
		out = append(out, byte(n))
	case n < 256:
		out = append(out, opPushData1, byte(n))
	default:
		out = append(out, opPushData2, byte(n), byte(n>>8))
	}
	return append(out, data...)
}

// NameIndexScript is the script ElectrumX indexes a name under:
// OP_NAME_UPDATE <name> <empty> OP_2DROP OP_DROP OP_RETURN.
func NameIndexScript(name []byte) []byte {
	s := pushData([]byte{OpNameUpdate}, name)
	return append(s, 0x00, op2Drop, opDrop, opReturn)
}

// NameScriptHash is the script hash to ask ElectrumX about a name: the
// SHA-256 of NameIndexScript, byte-reversed, in hex.
func NameScriptHash(name []byte) string {
	sum := sha256.Sum256(NameIndexScript(name))
	slices.Reverse(sum[:])
	return hex.EncodeToString(sum[:])
}

// Encoding is how a name or value is written in RPC results.
type Encoding string

// Namecoin Core's encodings.
const (
	EncodingASCII Encoding = "ascii"
	EncodingUTF8  Encoding = "utf8"
	EncodingHex   Encoding = "hex"
)

// ParseEncoding reads "ascii", "utf8" or "hex".
func ParseEncoding(s string) (Encoding, error) {
	switch e := Encoding(s); e {
	case EncodingASCII, EncodingUTF8, EncodingHex:
		return e, nil
	}
	return "", fmt.Errorf("unknown encoding %q (want ascii, utf8 or hex)", s)
}

// ErrInvalidForEncoding is returned when data cannot be written in an
// encoding.
var ErrInvalidForEncoding = errors.New("invalid data for encoding")

// Encode writes data in enc as Namecoin Core does: ascii allows bytes
// 0x20-0x7f only, utf8 valid UTF-8, hex is lowercase.
func Encode(data []byte, enc Encoding) (string, error) {
	switch enc {
	case EncodingASCII:
		for _, c := range data {
			if c < 0x20 || c >= 0x80 {
				return "", fmt.Errorf("%w %s", ErrInvalidForEncoding, enc)
			}
		}
		return string(data), nil
	case EncodingUTF8:
		if !validUTF8AsCore(data) {
			return "", fmt.Errorf("%w %s", ErrInvalidForEncoding, enc)
		}
		return string(data), nil
	case EncodingHex:
		return hex.EncodeToString(data), nil
	}
	return "", fmt.Errorf("unknown encoding %q", enc)
}

// validUTF8AsCore is the UTF-8 check Namecoin Core applies to names and
// values (univalue's IsValidUtf8String: decode, re-encode, compare). It
// differs from RFC 3629 in one way: four-byte sequences go up to U+1FFFFF
// (leads F5-F7 and F4 90.. are accepted). Overlong forms, surrogates (alone
// or paired), stray continuation bytes, leads F8-FF and cut sequences are
// refused, as there.
func validUTF8AsCore(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		var n int
		var cp, least rune
		switch {
		case c < 0x80:
			i++
			continue
		case c < 0xc0:
			return false
		case c < 0xe0:
			n, cp, least = 2, rune(c&0x1f), 0x80
		case c < 0xf0:
			n, cp, least = 3, rune(c&0x0f), 0x800
		case c < 0xf8:
			n, cp, least = 4, rune(c&0x07), 0x10000
		default:
			return false
		}
		if i+n > len(b) {
			return false
		}
		for _, cc := range b[i+1 : i+n] {
			if cc&0xc0 != 0x80 {
				return false
			}
			cp = cp<<6 | rune(cc&0x3f)
		}
		if cp < least || (cp >= 0xd800 && cp < 0xe000) {
			return false
		}
		i += n
	}
	return true
}

// Decode reads a name given in enc (RPC input).
func Decode(s string, enc Encoding) ([]byte, error) {
	switch enc {
	case EncodingHex:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %q", ErrInvalidForEncoding, enc, s)
		}
		return b, nil
	case EncodingASCII, EncodingUTF8:
		if _, err := Encode([]byte(s), enc); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("unknown encoding %q", enc)
}

// NameForMessage writes a name for an error message as Core's
// EncodeNameForMessage does: 'name' if it is ascii, else 0x<hex>.
func NameForMessage(name []byte) string {
	if s, err := Encode(name, EncodingASCII); err == nil {
		return "'" + s + "'"
	}
	return "0x" + hex.EncodeToString(name)
}
