package electrumxtest

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// IndexNames adds every name update in the served blocks to its name's
// history, the way ElectrumX's name index does: only outputs matching the
// canonical NAME_FIRSTUPDATE / NAME_UPDATE templates, no transaction
// version check. It is written apart from ncspv's own parser on purpose.
func (b *Backend) IndexNames() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.history = map[string][]HistoryEntry{}
	for h, ids := range b.blockTxs {
		for _, id := range ids {
			for _, name := range templateNames(b.txs[id]) {
				sh := ScriptHashOfName(name)
				b.history[sh] = append(b.history[sh], HistoryEntry{TxHash: id, Height: int32(h)})
			}
		}
	}
}

// ScriptHashOfName is ElectrumX's name index script hash.
func ScriptHashOfName(name []byte) string {
	s := []byte{0x53}
	s = pushData(s, name)
	s = append(s, 0x00, 0x6d, 0x75, 0x6a)
	sum := sha256.Sum256(s)
	slices.Reverse(sum[:])
	return hex.EncodeToString(sum[:])
}

func pushData(s, d []byte) []byte {
	switch n := len(d); {
	case n < 0x4c:
		s = append(s, byte(n))
	case n < 256:
		s = append(s, 0x4c, byte(n))
	default:
		s = append(s, 0x4d, byte(n), byte(n>>8))
	}
	return append(s, d...)
}

// templateNames returns the names a raw transaction's outputs update.
func templateNames(raw []byte) [][]byte {
	var names [][]byte
	for _, script := range outputScripts(raw) {
		ops, ok := scriptOps(script)
		if !ok || len(ops) < 5 {
			continue
		}
		switch {
		case ops[0].op == 0x52 && len(ops) >= 6 && isPush(ops[1]) && isPush(ops[2]) && isPush(ops[3]) &&
			ops[4].op == 0x6d && ops[5].op == 0x6d:
			names = append(names, ops[1].data)
		case ops[0].op == 0x53 && isPush(ops[1]) && isPush(ops[2]) && ops[3].op == 0x6d && ops[4].op == 0x75:
			names = append(names, ops[1].data)
		}
	}
	return names
}

type scriptOp struct {
	op   byte
	data []byte
}

func isPush(o scriptOp) bool { return o.op <= 0x4e }

func scriptOps(s []byte) ([]scriptOp, bool) {
	var ops []scriptOp
	for i := 0; i < len(s); {
		op := s[i]
		i++
		if op > 0x4e {
			ops = append(ops, scriptOp{op: op})
			continue
		}
		n := int(op)
		switch op {
		case 0x4c:
			if i+1 > len(s) {
				return nil, false
			}
			n, i = int(s[i]), i+1
		case 0x4d:
			if i+2 > len(s) {
				return nil, false
			}
			n, i = int(s[i])|int(s[i+1])<<8, i+2
		case 0x4e:
			if i+4 > len(s) {
				return nil, false
			}
			n, i = int(s[i])|int(s[i+1])<<8|int(s[i+2])<<16|int(s[i+3])<<24, i+4
		}
		if n < 0 || i+n > len(s) {
			return nil, false
		}
		ops = append(ops, scriptOp{op: op, data: s[i : i+n]})
		i += n
	}
	return ops, true
}

// outputScripts extracts the output scripts of a raw transaction (segwit
// aware), or nil if it does not parse.
func outputScripts(raw []byte) [][]byte {
	r := raw
	if len(r) < 10 {
		return nil
	}
	i := 4
	varint := func() (int, bool) {
		if i >= len(r) {
			return 0, false
		}
		b := r[i]
		i++
		switch b {
		case 0xfd:
			if i+2 > len(r) {
				return 0, false
			}
			v := int(r[i]) | int(r[i+1])<<8
			i += 2
			return v, true
		case 0xfe, 0xff:
			return 0, false // no test transaction is that large
		}
		return int(b), true
	}
	if r[i] == 0 && i+1 < len(r) && r[i+1] == 1 {
		i += 2
	}
	nIn, ok := varint()
	if !ok {
		return nil
	}
	for k := 0; k < nIn; k++ {
		i += 36
		l, ok := varint()
		if !ok {
			return nil
		}
		i += l + 4
	}
	nOut, ok := varint()
	if !ok {
		return nil
	}
	var out [][]byte
	for k := 0; k < nOut; k++ {
		i += 8
		l, ok := varint()
		if !ok || i+l > len(r) {
			return nil
		}
		out = append(out, r[i:i+l])
		i += l
	}
	return out
}
