package rpc

import (
	"testing"

	"github.com/ncspv/ncspv/spv"
)

// TestVerificationProgress: below 1 until a sync has completed, including
// before anything is known (it read 1 there).
func TestVerificationProgress(t *testing.T) {
	for _, c := range []struct {
		st   spv.State
		want float64
	}{
		{spv.State{Height: 518111}, 0},
		{spv.State{Height: 50, ServerHeight: 100}, 0.5},
		{spv.State{Height: 100, ServerHeight: 100}, 0.9999},
		{spv.State{Height: 100, ServerHeight: 105283}, 100.0 / 105283},
		{spv.State{Height: 100, ServerHeight: 90, Synced: true}, 1},
	} {
		if got := verificationProgress(c.st); got != c.want {
			t.Errorf("%+v: %v, want %v", c.st, got, c.want)
		}
	}
}
