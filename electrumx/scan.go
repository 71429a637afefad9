package electrumx

import (
	"bytes"
	"errors"
)

// errScan is returned by scanObject for input that is not a JSON object
// of the expected shape; callers report it as a protocol error.
var errScan = errors.New("malformed JSON object")

// scanObject splits a JSON object into its top-level members without
// copying or decoding them: each value is a sub-slice of b. Strings are
// skipped with IndexByte, so a reply holding megabytes of hex costs one
// fast pass instead of encoding/json's validating passes. Values are not
// validated here; whoever decodes a value validates it.
func scanObject(b []byte) (map[string][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errScan
	}
	i++
	out := map[string][]byte{}
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' && len(out) == 0 {
			return out, checkTrailing(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return nil, errScan
		}
		end, err := skipString(b, i)
		if err != nil {
			return nil, err
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, errScan // escaped keys are not ElectrumX's
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errScan
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i, 0)
		if err != nil {
			return nil, err
		}
		out[string(key)] = b[i:vEnd]
		i = skipSpace(b, vEnd)
		if i >= len(b) {
			return nil, errScan
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return out, checkTrailing(b, i+1)
		default:
			return nil, errScan
		}
	}
}

func checkTrailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errScan
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errScan
		}
		end := i + j
		// Count the backslashes before the quote: an odd number escapes it.
		k := end - 1
		for k >= i && b[k] == '\\' {
			k--
		}
		if (end-1-k)%2 == 0 {
			return end + 1, nil
		}
		i = end + 1
	}
}

// maxDepth bounds nesting so that hostile input cannot recurse deeply.
const maxDepth = 64

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) || depth > maxDepth {
		return 0, errScan
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errScan
				}
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipSpace(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, errScan
				}
				i = skipSpace(b, i+1)
			}
			end, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return 0, errScan
			}
			if b[i] == close {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errScan
			}
			i = skipSpace(b, i+1)
		}
	default:
		// Number or literal: up to the next delimiter.
		j := i
		for j < len(b) && !bytes.ContainsRune([]byte(" \t\r\n,]}"), rune(b[j])) {
			j++
		}
		if j == i {
			return 0, errScan
		}
		return j, nil
	}
}
