package testvectors

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirOverride(t *testing.T) {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "x.json"), []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvDir, d)
	var v struct{ A int }
	Load(t, "x.json", &v)
	if v.A != 1 {
		t.Fatalf("loaded %+v", v)
	}
}

func TestDirFindsSharedVectors(t *testing.T) {
	d := Dir()
	if d == "" {
		t.Skip("no ../shared/vectors beside the repository")
	}
	if _, err := os.Stat(filepath.Join(d, "auxpow-mainnet-headers.json")); err != nil {
		t.Fatalf("Dir() = %s but it lacks the header vectors: %v", d, err)
	}
}
