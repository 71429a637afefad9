package spv_test

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ncspv/ncspv/electrumx"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/spv"
)

// lockedBuffer is a log sink safe for the engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsKeepLookupsPrivate: above debug level the log shows no looked-up
// name, stream ID, or anything that identifies the name (its script hash,
// its transactions' ids), even when a server lies about it and is demoted;
// at debug level the details are there.
func TestLogsKeepLookupsPrivate(t *testing.T) {
	nc := liarChain()
	const stream = "stream-secret-42"
	secrets := []string{"d/ascii", hex.EncodeToString([]byte("d/ascii")), "d/nothing-here", stream, shOf("d/ascii")}
	for _, name := range []string{"d/ascii", "d/fresh"} {
		for _, u := range nc.updates[name] {
			secrets = append(secrets, u.txid.String())
		}
	}
	for _, c := range liarCases {
		t.Run(c.name, func(t *testing.T) {
			for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
				liarB := nc.backend()
				c.lie(t, nc, liarB)
				honest := startServer(t, nc.backend(), c.proto)
				liar := startServer(t, liarB, c.proto)
				var logs lockedBuffer
				e, _ := newEngineConfig(t, spv.Config{Params: &headers.RegTestParams,
					Servers: []electrumx.Server{honest.Address(), liar.Address()}, Confirmations: 3, QueryServers: 2,
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
				ctx := syncEngine(t, e)
				if _, err := e.NameShow(ctx, []byte("d/ascii"), spv.LookupOptions{StreamID: stream}); err != nil {
					t.Fatal(err)
				}
				e.NameShow(ctx, []byte("d/nothing-here"), spv.LookupOptions{StreamID: stream})
				e.Close()
				out := logs.String()
				demoted := len(e.Demoted()) > 0
				if level == slog.LevelInfo {
					for _, s := range secrets {
						if strings.Contains(out, s) {
							t.Errorf("info-level log shows %q:\n%s", s, out)
						}
					}
					if demoted && !strings.Contains(out, "server demoted") {
						t.Errorf("the demotion is not logged:\n%s", out)
					}
				} else if demoted && !strings.Contains(out, "reason=") {
					t.Errorf("debug-level log lacks the reason:\n%s", out)
				}
			}
		})
	}
}
