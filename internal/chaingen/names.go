package chaingen

import (
	"bytes"
	"encoding/binary"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

// Name operations, as in Namecoin Core.
const (
	OpFirstUpdate = 0x52
	OpUpdate      = 0x53
)

// NameTx builds a Namecoin name transaction (version 0x7100) shaped like a
// real one: two signed inputs (the previous name output and a funding
// coin; tag makes them unique), the NAME_FIRSTUPDATE or NAME_UPDATE output
// of name and value paying to the P2PKH of pkh at index vout, and a change
// output. Real name transactions are 400-500 bytes; so are these.
func NameTx(op byte, name, value []byte, pkh [20]byte, vout int, tag uint64) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, headers.NamecoinTxVersion)
	tx = append(tx, 2)
	for in := uint64(0); in < 2; in++ {
		prev := chainhash.DoubleHashH(binary.LittleEndian.AppendUint64([]byte("chaingen-name"), tag<<1|in))
		tx = append(tx, prev[:]...)
		tx = binary.LittleEndian.AppendUint32(tx, uint32(in))
		// A DER signature push and a compressed public key push.
		sig := append(bytes.Repeat([]byte{0x30}, 71), 0x01)
		pub := append([]byte{0x02}, prev[:]...)
		script := append(append([]byte{byte(len(sig))}, sig...), byte(len(pub)))
		script = append(script, pub...)
		tx = headers.AppendVarInt(tx, uint64(len(script)))
		tx = append(tx, script...)
		tx = binary.LittleEndian.AppendUint32(tx, 0xfffffffd)
	}
	tx = append(tx, byte(vout+2))
	for i := 0; i <= vout+1; i++ {
		var script []byte
		switch {
		case i == vout:
			script = NameScript(op, name, value, pkh)
		case i == vout+1:
			script = append([]byte{0x00, 20}, bytes.Repeat([]byte{byte(tag)}, 20)...) // change, P2WPKH
		default:
			script = P2PKH([20]byte{byte(i), 0xaa})
		}
		tx = binary.LittleEndian.AppendUint64(tx, 1_000_000)
		tx = headers.AppendVarInt(tx, uint64(len(script)))
		tx = append(tx, script...)
	}
	return binary.LittleEndian.AppendUint32(tx, 0)
}

// NameScript is the canonical name output script (Core's
// CNameScript::buildNameFirstupdate / buildNameUpdate) before a P2PKH.
func NameScript(op byte, name, value []byte, pkh [20]byte) []byte {
	s := []byte{op}
	s = push(s, name)
	if op == OpFirstUpdate {
		s = push(s, make([]byte, 20)) // rand
		s = push(s, value)
		s = append(s, 0x6d, 0x6d) // OP_2DROP OP_2DROP
	} else {
		s = push(s, value)
		s = append(s, 0x6d, 0x75) // OP_2DROP OP_DROP
	}
	return append(s, P2PKH(pkh)...)
}

// P2PKH is OP_DUP OP_HASH160 <pkh> OP_EQUALVERIFY OP_CHECKSIG.
func P2PKH(pkh [20]byte) []byte {
	s := []byte{0x76, 0xa9, 20}
	s = append(s, pkh[:]...)
	return append(s, 0x88, 0xac)
}

func push(s, data []byte) []byte {
	switch n := len(data); {
	case n < 0x4c:
		s = append(s, byte(n))
	case n < 256:
		s = append(s, 0x4c, byte(n))
	default:
		s = append(s, 0x4d, byte(n), byte(n>>8))
	}
	return append(s, data...)
}
