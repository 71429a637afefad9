package electrumx

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
)

// hexReplyPrefix starts a reply whose result begins with a hex member, as
// ElectrumX writes blockchain.block.headers replies. Such replies are
// megabytes long (ElectrumX 1.20 pads them up to twice their size), so
// they are decoded while read: the hex straight into bytes, the padding
// dropped, and no line-sized buffer kept.
var hexReplyPrefix = []byte(`{"jsonrpc":"2.0","result":{"hex":"`)

// maxReplyRest bounds what follows the hex member once padding is
// dropped (count, max, branch, root, id).
const maxReplyRest = 64 << 10

// readHexReply reads one reply line that starts with hexReplyPrefix. It
// returns the line with an empty hex member (and insignificant spaces
// removed) and the decoded hex.
func readHexReply(r *bufio.Reader, max int) (line, decoded []byte, err error) {
	if _, err := r.Discard(len(hexReplyPrefix)); err != nil {
		return nil, nil, err
	}
	total := len(hexReplyPrefix)
	decoded = getHexBuf()
	var carry []byte // an odd hex digit left from the previous window
	for {
		window, perr := r.Peek(r.Buffered())
		if len(window) == 0 {
			if _, perr = r.Peek(1); perr != nil {
				return nil, nil, perr
			}
			continue
		}
		end := bytes.IndexByte(window, '"')
		chunk := window
		if end >= 0 {
			chunk = window[:end]
		}
		if total+len(chunk) > max {
			return nil, nil, fmt.Errorf("%w: more than %d bytes without a newline", ErrReplyTooLarge, max)
		}
		total += len(chunk)
		if len(carry) == 1 && len(chunk) > 0 {
			var b [1]byte
			if _, err := hex.Decode(b[:], []byte{carry[0], chunk[0]}); err != nil {
				return nil, nil, fmt.Errorf("%w: bad hex in reply: %v", ErrProtocol, err)
			}
			decoded = append(decoded, b[0])
			chunk, carry = chunk[1:], nil
		}
		even := len(chunk) &^ 1
		n := len(decoded)
		decoded = slices.Grow(decoded, even/2)[:n+even/2]
		if _, err := hex.Decode(decoded[n:], chunk[:even]); err != nil {
			return nil, nil, fmt.Errorf("%w: bad hex in reply: %v", ErrProtocol, err)
		}
		if even < len(chunk) {
			carry = []byte{chunk[even]}
		}
		if end >= 0 {
			if carry != nil {
				return nil, nil, fmt.Errorf("%w: odd-length hex in reply", ErrProtocol)
			}
			r.Discard(end + 1)
			break
		}
		r.Discard(len(window))
	}
	// The rest: keep it compact, dropping whitespace outside strings.
	rest := append([]byte{}, hexReplyPrefix...)
	rest = append(rest, '"')
	inString, escaped := false, false
	for {
		if !inString {
			// Blanks outside strings are dropped here, and padding comes
			// in runs of up to a megabyte: skip what is buffered of a run
			// at once, not byte by byte.
			n, err := skipBlanks(r, max-total+1)
			if err != nil {
				return nil, nil, err
			}
			if total += n; total > max {
				return nil, nil, fmt.Errorf("%w: more than %d bytes without a newline", ErrReplyTooLarge, max)
			}
		}
		c, err := r.ReadByte()
		if err != nil {
			return nil, nil, err
		}
		total++
		if total > max {
			return nil, nil, fmt.Errorf("%w: more than %d bytes without a newline", ErrReplyTooLarge, max)
		}
		if c == '\n' && !inString {
			return rest, decoded, nil
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
		if len(rest) >= len(hexReplyPrefix)+maxReplyRest {
			return nil, nil, fmt.Errorf("%w: reply tail over %d bytes", ErrReplyTooLarge, maxReplyRest)
		}
		rest = append(rest, c)
	}
}

// skipBlanks discards the spaces, tabs and carriage returns at the front
// of r, up to limit of them, and returns how many it discarded.
func skipBlanks(r *bufio.Reader, limit int) (int, error) {
	skipped := 0
	for skipped < limit {
		window, err := r.Peek(min(max(r.Buffered(), 1), limit-skipped))
		if len(window) == 0 {
			return skipped, err
		}
		n := 0
		for n < len(window) && (window[n] == ' ' || window[n] == '\t' || window[n] == '\r') {
			n++
		}
		r.Discard(n)
		skipped += n
		if n < len(window) {
			break
		}
	}
	return skipped, nil
}

// startsHexReply reports whether the next line starts with
// hexReplyPrefix. It waits for more bytes only while what is buffered is
// a proper prefix of it, which a complete line never is (the prefix holds
// no newline), so it cannot stall on a short reply.
func startsHexReply(r *bufio.Reader) (bool, error) {
	if _, err := r.Peek(1); err != nil {
		return false, err
	}
	for {
		n := min(r.Buffered(), len(hexReplyPrefix))
		p, _ := r.Peek(n)
		if !bytes.Equal(p, hexReplyPrefix[:n]) {
			return false, nil
		}
		if n == len(hexReplyPrefix) {
			return true, nil
		}
		if _, err := r.Peek(n + 1); err != nil {
			return false, err
		}
	}
}

// hexBufs recycles the buffers hex replies are decoded into (a header
// chunk is hundreds of KB): HeadersReply.Release returns one. Reusing
// them spares the collector and the page faults of fresh large buffers.
var hexBufs sync.Pool

func getHexBuf() []byte {
	if p, ok := hexBufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 256<<10)
}

func putHexBuf(b []byte) {
	if cap(b) >= 64<<10 {
		hexBufs.Put(&b)
	}
}
