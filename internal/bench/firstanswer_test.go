package bench

import (
	"context"
	"testing"
	"time"

	"github.com/ncspv/ncspv/spv"
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
	var got [3]FirstAnswer
	for i, in := range []Install{{}, {Sampled: true}, {Sampled: true, SplitBug: true}} {
		r, err := RunFirstAnswer(ctx, sc, link, in, t.TempDir(), nil)
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		got[i] = r
	}
	full, sampled, singles := got[0], got[1], got[2]
	if full.Verification != "fully verified" || sampled.Verification != "sampled" || singles.Verification != "sampled" {
		t.Fatalf("modes %q, %q and %q", full.Verification, sampled.Verification, singles.Verification)
	}
	if full.Value != sampled.Value || full.Value != singles.Value || full.Value == "" {
		t.Fatalf("values %q, %q and %q", full.Value, sampled.Value, singles.Value)
	}
	// The sample drew at least one header and never more than the
	// security target asks for, repeats removed.
	if most := spv.SampleCount(0.10, 1e-6, 40); sampled.Samples < 1 || sampled.Samples > most {
		t.Fatalf("%d samples, want 1 to %d", sampled.Samples, most)
	}
	// The single-header form costs more than the joined one and less
	// than full headers.
	if sampled.Bytes*2 > full.Bytes || singles.Bytes <= sampled.Bytes || singles.Bytes >= full.Bytes {
		t.Fatalf("bytes: full %d, sampled %d, sampled from a server with the split bug %d", full.Bytes, sampled.Bytes, singles.Bytes)
	}
	t.Logf("full %d bytes %v; sampled %d bytes %v; with the split bug %d bytes %v",
		full.Bytes, full.Time, sampled.Bytes, sampled.Time, singles.Bytes, singles.Time)
}
