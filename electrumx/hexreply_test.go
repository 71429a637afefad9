package electrumx

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// blanks is an endless stream of spaces.
type blanks struct{}

func (blanks) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// TestHexReplyEndlessPadding: a server that pads forever is cut off at
// the line limit instead of being read forever.
func TestHexReplyEndlessPadding(t *testing.T) {
	head := strings.NewReader(string(hexReplyPrefix) + `00","count":1`)
	r := bufio.NewReaderSize(io.MultiReader(head, blanks{}), 16<<10)
	done := make(chan error, 1)
	go func() {
		_, _, err := readHexReply(r, 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrReplyTooLarge) {
			t.Fatalf("got %v, want ErrReplyTooLarge", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still reading padding after 10 s")
	}
}
