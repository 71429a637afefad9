package rpc

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzParseNameShow: any params never panic, and accepted ones carry
// valid encodings.
func FuzzParseNameShow(f *testing.F) {
	for _, s := range []string{`["d/x"]`, `["d/x",{"streamID":"s","nameEncoding":"hex"}]`,
		`["d/x","ascii","utf8","s"]`, `{"identifier":"d/x","options":{"streamID":"s"}}`, `null`, `[{}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		a, err := parseNameShow(json.RawMessage(params))
		if err != nil {
			return
		}
		for _, e := range []string{string(a.nameEncoding), string(a.valueEncoding)} {
			if e != "ascii" && e != "utf8" && e != "hex" {
				t.Fatalf("accepted encoding %q", e)
			}
		}
	})
}

// FuzzHandle: any request body is answered without a panic.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"1.0","id":1,"method":"name_show","params":["d/x"]}`))
	f.Add([]byte(`{"method":"help"}`))
	s := &Server{methods: map[string]method{"help": (&Server{}).help}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, res, rerr := s.handleOne(context.Background(), body)
		_ = encodeReply(req, res, rerr)
	})
}
