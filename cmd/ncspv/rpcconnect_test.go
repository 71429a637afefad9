package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ncspv/ncspv/spv"
)

// TestRPCConnectReadsAnswerEncoding: the --rpcconnect clients read the
// value in the encoding the answer names. A server that ignores the
// valueEncoding asked for (here it always answers ascii) still works:
// prop279 gets the value's bytes, name-show prints the encodings asked
// for.
func TestRPCConnectReadsAnswerEncoding(t *testing.T) {
	const value = `{"ip":"192.0.2.7"}`
	answer, _ := json.Marshal(map[string]any{"result": map[string]any{
		"name": "d/x", "name_encoding": "ascii", "value": value, "value_encoding": "ascii",
		"txid": strings.Repeat("ab", 32), "vout": 0, "address": "n", "height": 5, "expires_in": 10, "expired": false,
	}, "error": nil, "id": 1})
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		asked = string(b)
		w.Write(answer)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cfg := &config{RPCUser: "u", RPCPass: "p"}

	got, err := rpcLookup(addr, cfg, nil)(context.Background(), "d/x", "stream-1")
	if err != nil || string(got) != value {
		t.Fatalf("prop279 through a server that ignores valueEncoding: %q %v", got, err)
	}
	if !strings.Contains(asked, `"valueEncoding":"hex"`) || !strings.Contains(asked, `"streamID":"stream-1"`) {
		t.Fatalf("request %s", asked)
	}

	raw, _ := callRPC(context.Background(), addr, cfg, nil, "name_show", []any{"d/x"})
	b, _ := json.Marshal(inEncodings(raw, spv.EncodingASCII, spv.EncodingHex))
	var shown map[string]any
	json.Unmarshal(b, &shown)
	if shown["value_encoding"] != "hex" || shown["value"] != "7b226970223a223139322e302e322e37227d" || shown["name"] != "d/x" {
		t.Fatalf("name-show --value-encoding=hex through that server: %s", b)
	}
}

// TestHoldWhileSyncing: a .bit stream that arrives during the first sync
// gets its answer once the sync allows, not a failure; a caller that gives
// up gets the syncing error.
func TestHoldWhileSyncing(t *testing.T) {
	calls := 0
	l := holdWhileSyncing(func(ctx context.Context, name, stream string) ([]byte, error) {
		calls++
		if calls < 3 {
			return nil, spv.ErrSyncing
		}
		return []byte(`{"ip":"1.2.3.4"}`), nil
	}, time.Millisecond)
	v, err := l(context.Background(), "d/x", "s")
	if err != nil || string(v) != `{"ip":"1.2.3.4"}` || calls != 3 {
		t.Fatalf("%q %v after %d calls", v, err, calls)
	}
	never := holdWhileSyncing(func(context.Context, string, string) ([]byte, error) { return nil, spv.ErrSyncing }, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := never(ctx, "d/x", "s"); !errors.Is(err, spv.ErrSyncing) {
		t.Fatalf("gave up with %v", err)
	}
}
