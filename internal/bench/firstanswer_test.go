package bench

import (
	"context"
	"testing"
	"time"

	"github.com/ncspv/ncspv/tor/tortest"
)

// TestFirstAnswer runs the first-answer benchmark on a short simulated
// chain through a fast emulated link: both installs answer with the
// generated value, the sampled one says so, downloads less than half of
// what the full one does, and the chain retargets and has mainnet-sized
// headers.
func TestFirstAnswer(t *testing.T) {
	sc := GenerateSim(8000, 1)
	if sc.AvgHeader < 1550 || sc.AvgHeader > 1800 {
		t.Fatalf("average header %.0f bytes, want about mainnet's 1,670", sc.AvgHeader)
	}
	if sc.Retargets < 2 {
		t.Fatalf("%d retargets in %d headers", sc.Retargets, sc.Headers)
	}
	link := tortest.Link{OneWay: 5 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got [2]FirstAnswer
	for i, sampled := range []bool{false, true} {
		r, err := RunFirstAnswer(ctx, sc, link, sampled, t.TempDir(), nil)
		if err != nil {
			t.Fatalf("sampled=%v: %v", sampled, err)
		}
		got[i] = r
	}
	full, sampled := got[0], got[1]
	if full.Verification != "fully verified" || sampled.Verification != "sampled" {
		t.Fatalf("modes %q and %q", full.Verification, sampled.Verification)
	}
	if full.Value != sampled.Value || full.Value == "" {
		t.Fatalf("values %q and %q", full.Value, sampled.Value)
	}
	if sampled.Bytes*2 > full.Bytes {
		t.Fatalf("sampled %d bytes, full %d: not under half", sampled.Bytes, full.Bytes)
	}
	t.Logf("full %d bytes %v; sampled %d bytes %v", full.Bytes, full.Time, sampled.Bytes, sampled.Time)
}
