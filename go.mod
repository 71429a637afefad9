module github.com/ncspv/ncspv

go 1.26

require (
	github.com/btcsuite/btcd v0.24.2
	github.com/btcsuite/btcd/chaincfg/chainhash v1.1.0
	github.com/jessevdk/go-flags v1.6.1
	go.etcd.io/bbolt v1.4.3
)

require (
	golang.org/x/crypto v0.0.0-20200622213623-75b288015ac9 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
