package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the ncspv binary the tests that run it share.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// ncspvBinary builds ncspv once for the whole test run, static and
// without the race detector (whose runtime would dwarf what the
// harnesses measure), or skips the test when there is no go tool.
func ncspvBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build ncspv with")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ncspv-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "ncspv")
		build := exec.Command(goTool, "build", "-o", built.path, ".")
		build.Env = append(build.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}
