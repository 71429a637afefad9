package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ncspv/ncspv/electrumx/electrumxtest"
	"github.com/ncspv/ncspv/headers"
	"github.com/ncspv/ncspv/internal/chaingen"
)

// ServerOptions configure the fake servers of ncspv bench, which run in
// a hidden child (Serve): it generates a named chain, serves it on
// loopback, prints "ready ADDR143 ADDR142" and answers "count SERVER"
// with the request lines that server received, handshakes left out, and
// "cpu" with its CPU time, until its standard input closes.
type ServerOptions struct {
	Blocks                   int
	MinCoinbase, MaxCoinbase int
	// Hostile serves the chain honestly and once per hostile case
	// (ncspv bench-hostile): "ready HONEST CASE1 CASE2 ...".
	Hostile bool
}

// ServerCommand is the hidden subcommand of ncspv that runs Serve.
const ServerCommand = "bench-server"

// Serve runs the child of ncspv bench and bench-hostile.
func Serve(c ServerOptions) error {
	p := &headers.RegTestParams
	g := chaingen.New(p, 7)
	g.MinCoinbase, g.MaxCoinbase = c.MinCoinbase, c.MaxCoinbase
	for h := 1; h <= c.Blocks; h++ {
		var txs [][]byte
		// Register the names near the tip: regtest names expire after 30.
		if h > c.Blocks-20 && h <= c.Blocks-20+len(benchNames) {
			i := h - (c.Blocks - 20) - 1
			txs = append(txs, chaingen.NameTx(chaingen.OpFirstUpdate, []byte(benchNames[i]),
				[]byte(`{"ip":"127.0.0.1","tor":"bench`+strconv.Itoa(i)+`aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion"}`),
				[20]byte{byte(i)}, 0, uint64(h)))
		}
		g.Next(chaingen.Spec{Txs: txs})
	}
	b := electrumxtest.FromChain(g)
	b.IndexNames()
	if c.Hostile {
		return serveHostile(b)
	}
	s143, err := electrumxtest.NewServer(b, electrumxtest.Options{Pad: true, HoldSmall: time.Second})
	if err != nil {
		return err
	}
	defer s143.Close()
	s142, err := electrumxtest.NewServer(b, electrumxtest.Options{MaxProtocol: "1.4.2"})
	if err != nil {
		return err
	}
	defer s142.Close()
	fmt.Printf("ready %s %s\n", s143.Address(), s142.Address())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 1 && f[0] == "cpu" {
			fmt.Println(cpuTime())
		}
		if len(f) == 2 && f[0] == "count" {
			s := s142
			if f[1] == s143.Address().String() {
				s = s143
			}
			// A lookup's own round trips: request lines less the
			// handshakes of the spare circuits the pool refills in the
			// background, which may land in or out of a counted span.
			fmt.Println(s.RoundTrips() - s.Requests("server.version"))
		}
	}
	return nil
}
