module github.com/ncspv/ncspv

go 1.26

require (
	github.com/btcsuite/btcd/chaincfg/chainhash v1.1.0
	go.etcd.io/bbolt v1.4.3
)

require golang.org/x/sys v0.29.0 // indirect
