package spv

import (
	"crypto/sha256"
	"math/big"
	"strings"
)

// AddressParams are a network's address prefixes (Namecoin Core's
// chainparams).
type AddressParams struct {
	PubKeyHash byte
	ScriptHash byte
	Bech32HRP  string
}

// Address prefixes per network.
var (
	MainNetAddresses = AddressParams{PubKeyHash: 52, ScriptHash: 13, Bech32HRP: "nc"}
	TestNetAddresses = AddressParams{PubKeyHash: 111, ScriptHash: 196, Bech32HRP: "tn"}
	RegTestAddresses = AddressParams{PubKeyHash: 111, ScriptHash: 196, Bech32HRP: "ncrt"}
)

// Nonstandard is what Core writes for a script without an address.
const Nonstandard = "<nonstandard>"

// ScriptAddress renders the address of an output script as Core's
// ExtractDestination + EncodeDestination would: P2PKH, P2SH, segwit v0
// (P2WPKH, P2WSH), and witness v1-16 programs (bech32m); anything else,
// bare public keys included, is "<nonstandard>".
//
// As Core's Solver, it first strips a name prefix from s: the address of
// a name output whose ordinary part starts with a second name prefix is
// that of what follows the second prefix.
func ScriptAddress(s []byte, p AddressParams) string {
	if op, ok := ParseNameScript(s); ok {
		s = op.Address
	}
	switch {
	case len(s) == 25 && s[0] == 0x76 && s[1] == 0xa9 && s[2] == 20 && s[23] == 0x88 && s[24] == 0xac:
		return base58Check(p.PubKeyHash, s[3:23])
	case len(s) == 23 && s[0] == 0xa9 && s[1] == 20 && s[22] == 0x87:
		return base58Check(p.ScriptHash, s[2:22])
	}
	if v, prog, ok := witnessProgram(s); ok {
		if v == 0 && len(prog) != 20 && len(prog) != 32 {
			return Nonstandard
		}
		return segwitAddress(p.Bech32HRP, v, prog)
	}
	return Nonstandard
}

// witnessProgram reads OP_n <2-40 bytes> (BIP141).
func witnessProgram(s []byte) (int, []byte, bool) {
	if len(s) < 4 || len(s) > 42 || int(s[1]) != len(s)-2 {
		return 0, nil, false
	}
	switch {
	case s[0] == 0:
		return 0, s[2:], true
	case s[0] >= 0x51 && s[0] <= 0x60:
		return int(s[0] - 0x50), s[2:], true
	}
	return 0, nil, false
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58Check(version byte, payload []byte) string {
	b := append([]byte{version}, payload...)
	first := sha256.Sum256(b)
	second := sha256.Sum256(first[:])
	b = append(b, second[:4]...)
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod := new(big.Int)
	base := big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// segwitAddress is BIP173 (v0, bech32) or BIP350 (v1+, bech32m).
func segwitAddress(hrp string, version int, program []byte) string {
	data := []byte{byte(version)}
	// Regroup 8-bit bytes into 5-bit words.
	acc, bits := 0, 0
	for _, b := range program {
		acc = acc<<8 | int(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			data = append(data, byte(acc>>uint(bits)&31))
		}
	}
	if bits > 0 {
		data = append(data, byte(acc<<uint(5-bits)&31))
	}
	konst := uint32(1)
	if version > 0 {
		konst = 0x2bc830a3
	}
	var values []byte
	for _, c := range hrp {
		values = append(values, byte(c>>5))
	}
	values = append(values, 0)
	for _, c := range hrp {
		values = append(values, byte(c&31))
	}
	values = append(values, data...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(values) ^ konst
	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, d := range data {
		sb.WriteByte(bech32Charset[d])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(bech32Charset[(mod>>uint(5*(5-i)))&31])
	}
	return sb.String()
}
