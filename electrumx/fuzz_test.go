package electrumx

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// FuzzDispatch feeds arbitrary reply lines to the client's decoder: it
// must never panic, and a pending call gets at most one reply.
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","result":["ElectrumX 1.20.0","1.4.3"],"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":1,"message":"x"},"id":1}`,
		`{"jsonrpc":"2.0","error":"plain string","id":1}`,
		`[{"jsonrpc":"2.0","result":null,"id":1},{"jsonrpc":"2.0","result":1,"id":2}]`,
		`{"jsonrpc":"2.0","method":"blockchain.headers.subscribe","params":[{"hex":"00","height":1}]}`,
		`{"jsonrpc":"2.0","error":{"code":-32700,"message":"invalid JSON"},"id":null}`,
		`{"id":18446744073709551615,"result":{}}` + "          ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c := &Client{
			log:     slog.New(slog.DiscardHandler),
			pending: map[uint64]chan reply{},
			subs:    map[string][]chan json.RawMessage{},
			closed:  make(chan struct{}),
		}
		ch := make(chan reply, 1)
		c.pending[1] = ch
		sub := make(chan json.RawMessage, 1)
		c.subs["blockchain.headers.subscribe"] = []chan json.RawMessage{sub}
		// Go through the line reader too, with a small cap.
		r := bufio.NewReaderSize(bytes.NewReader(append(line, '\n')), 16)
		l, err := readLine(r, 4096)
		if err != nil || len(l) == 0 {
			return
		}
		_ = c.dispatch(l, nil)
		// The streaming path for hex replies, on the same bytes.
		hr := bufio.NewReaderSize(bytes.NewReader(append(append(append([]byte{}, hexReplyPrefix...), line...), '\n')), 16)
		if ok, err := startsHexReply(hr); err == nil && ok {
			if rest, body, err := readHexReply(hr, 4096); err == nil {
				_ = c.dispatch(rest, body)
			}
		}
	})
}
