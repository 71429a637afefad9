package tor

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSOCKSReply: whatever the proxy answers, the exchange never panics
// or hangs, and succeeds only when the proxy took username/password and
// its CONNECT answer said success.
func FuzzSOCKSReply(f *testing.F) {
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0})
	f.Add([]byte{5, 2, 1, 0, 5, 6, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 3, 4, 'a', 'b', 'c', 'd', 0, 80})
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, proxy := net.Pipe()
		defer client.Close()
		go func() {
			io.Copy(io.Discard, proxy)
		}()
		conn := &scripted{Conn: client, r: bytes.NewReader(reply)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := socksConnect(ctx, conn, "example.onion:50002", Credentials{User: "u", Password: "p"})
		if err == nil && (len(reply) < 10 || reply[1] != 2 || reply[3] != 0 || reply[5] != 0) {
			t.Fatalf("accepted %x", reply)
		}
		proxy.Close()
	})
}

// scripted is a connection whose reads come from r and whose writes go
// to the pipe (drained).
type scripted struct {
	net.Conn
	r io.Reader
}

func (s *scripted) Read(b []byte) (int, error) { return s.r.Read(b) }
