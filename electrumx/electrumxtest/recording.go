package electrumxtest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ncspv/ncspv/headers"
)

// Recording is a recording of real Namecoin Core regtest served by
// ElectrumX 1.20 (../shared/vectors/regtest-recording.json): its header
// chunks, and per name what ElectrumX and Core answered.
type Recording struct {
	TipHeight           int32  `json:"tip_height"`
	TipHash             string `json:"tip_hash"`
	NameExpirationDepth int32  `json:"name_expiration_depth"`
	Chunks              []struct {
		Hex string `json:"hex"`
	} `json:"chunks"`
	Names map[string]RecordedName `json:"names"`
}

// RecordedName is what was recorded for one name.
type RecordedName struct {
	ScriptHash string `json:"scripthash"`
	// ShowResult is Core's name_show result, or CoreError its error.
	ShowResult json.RawMessage `json:"namecoind_name_show"`
	CoreError  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"namecoind_error"`
	History []struct {
		TxHash string `json:"tx_hash"`
		Height int32  `json:"height"`
	} `json:"history"`
	ValueProof map[string][]struct {
		Height   int32  `json:"height"`
		Tx       string `json:"tx"`
		TxMerkle struct {
			Merkle []string `json:"merkle"`
			Pos    int      `json:"pos"`
		} `json:"tx_merkle"`
	} `json:"get_value_proof"`
}

// ReadRecording reads a recording file.
func ReadRecording(path string) (*Recording, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Recording
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Chunks) == 0 {
		return nil, fmt.Errorf("%s has no header chunks", path)
	}
	return &r, nil
}

// Backend serves what was recorded: the headers, and every recorded
// name's transactions, merkle proofs and history.
func (r *Recording) Backend() (*Backend, error) {
	b := NewBackend()
	b.ExpirationDepth = r.NameExpirationDepth
	for _, ch := range r.Chunks {
		raw, err := hex.DecodeString(ch.Hex)
		if err != nil {
			return nil, err
		}
		fhs, err := headers.ParseFullHeaders(raw)
		if err != nil {
			return nil, fmt.Errorf("recorded chunk: %w", err)
		}
		for _, fh := range fhs {
			b.AddRawHeader(fh.Serialize())
		}
	}
	for _, rn := range r.Names {
		for _, en := range rn.ValueProof[rn.ScriptHash] {
			txRaw, _ := hex.DecodeString(en.Tx)
			var branch []chainhash.Hash
			for _, h := range en.TxMerkle.Merkle {
				bh, _ := chainhash.NewHashFromStr(h)
				branch = append(branch, *bh)
			}
			b.AddTxProof(txRaw, en.Height, branch, en.TxMerkle.Pos)
		}
		for _, h := range rn.History {
			id, _ := chainhash.NewHashFromStr(h.TxHash)
			b.AddHistory(rn.ScriptHash, HistoryEntry{TxHash: *id, Height: h.Height})
		}
	}
	return b, nil
}
