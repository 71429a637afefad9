package main

import (
	"os"
	"testing"
)

// TestMain keeps the tests hermetic: the system config directory is an
// empty one of the test's, here and (NCSPV_CONFDIR) in every ncspv a test
// starts, so a /etc/ncspv installed on the machine (a drop-in with a
// password, say) cannot change what they see.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ncspv-etc-")
	if err != nil {
		panic(err)
	}
	systemConfigDir = dir
	os.Setenv("NCSPV_CONFDIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
