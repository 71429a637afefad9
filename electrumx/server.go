package electrumx

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Server is an ElectrumX server address.
type Server struct {
	Host string
	Port int
	TLS  bool
}

// String gives the canonical form, tcp://host:port or ssl://host:port.
func (s Server) String() string {
	scheme := "tcp"
	if s.TLS {
		scheme = "ssl"
	}
	return scheme + "://" + s.Addr()
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// IsOnion reports a Tor onion service address.
func (s Server) IsOnion() bool { return strings.HasSuffix(strings.ToLower(s.Host), ".onion") }

// ParseServer reads tcp://host:port, ssl://host:port or Electrum's
// host:port:t / host:port:s.
func ParseServer(str string) (Server, error) {
	in := strings.TrimSpace(str)
	var s Server
	var hostport string
	switch {
	case strings.HasPrefix(in, "tcp://"):
		hostport = strings.TrimPrefix(in, "tcp://")
	case strings.HasPrefix(in, "ssl://"), strings.HasPrefix(in, "tls://"):
		hostport, s.TLS = in[len("ssl://"):], true
	case strings.HasSuffix(in, ":t"):
		hostport = strings.TrimSuffix(in, ":t")
	case strings.HasSuffix(in, ":s"):
		hostport, s.TLS = strings.TrimSuffix(in, ":s"), true
	default:
		return Server{}, fmt.Errorf("server %q: want tcp://host:port, ssl://host:port or host:port:t|s", str)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return Server{}, fmt.Errorf("server %q: bad host:port", str)
	}
	if strings.ContainsAny(host, "/ \t") {
		return Server{}, fmt.Errorf("server %q: bad host", str)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Server{}, fmt.Errorf("server %q: bad port", str)
	}
	s.Host, s.Port = host, n
	return s, nil
}

// DefaultServers are the public Namecoin ElectrumX servers for mainnet
// (Electrum-NMC's list): one clearnet server that answered in 2026 and
// four onion services. All use TLS with self-signed certificates, pinned
// on first use.
func DefaultServers() []Server {
	list := []string{
		"ssl://nmc2.bitcoins.sk:57002",
		"ssl://h6qrnwxtwiaahsw4qhk2nbutswwb54vnqso6jrxeuk6nwtfbos7jkoqd.onion:50002",
		"ssl://mqhok2edqcxdpklwovquuvvl2q5or4g2o777qwrinydgzfxjbixq76yd.onion:50002",
		"ssl://wirg2tsto7rme7n26lkd3ivbvxmjyy2pktlozwjuep22jcsfsghfqbqd.onion:50002",
		"ssl://quuzpffsddq3aim3gk4oiczzyt5okjjzf4zpe6okzo6qidao6rshynqd.onion:50002",
	}
	out := make([]Server, len(list))
	for i, s := range list {
		out[i], _ = ParseServer(s)
	}
	return out
}
