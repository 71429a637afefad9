module github.com/ncspv/ncspv

go 1.26.0

require (
	github.com/btcsuite/btcd v0.24.2
	github.com/btcsuite/btcd/chaincfg/chainhash v1.1.0
	github.com/cretz/bine v0.2.0
	github.com/jessevdk/go-flags v1.6.1
	go.etcd.io/bbolt v1.4.3
	golang.org/x/net v0.62.0
)

require (
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
