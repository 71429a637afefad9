package spv

import "fmt"

// NameShowJSON is a name_show result in Namecoin Core's field order. When
// the name or value cannot be written in the requested encoding, Core
// replaces the field with name_error / value_error.
type NameShowJSON struct {
	Name          *JSONText `json:"name,omitempty"`
	NameError     *string   `json:"name_error,omitempty"`
	NameEncoding  Encoding  `json:"name_encoding"`
	Value         *JSONText `json:"value,omitempty"`
	ValueError    *string   `json:"value_error,omitempty"`
	ValueEncoding Encoding  `json:"value_encoding"`
	TxID          string    `json:"txid"`
	Vout          uint32    `json:"vout"`
	Address       string    `json:"address"`
	Height        int32     `json:"height"`
	ExpiresIn     int32     `json:"expires_in"`
	Expired       bool      `json:"expired"`
}

// JSON renders the result with the given encodings (Core's default is
// ascii for both).
func (r *NameResult) JSON(nameEnc, valueEnc Encoding) NameShowJSON {
	out := NameShowJSON{
		NameEncoding:  nameEnc,
		ValueEncoding: valueEnc,
		TxID:          r.TxID.String(),
		Vout:          r.Vout,
		Address:       r.Address,
		Height:        r.Height,
		ExpiresIn:     r.ExpiresIn,
		Expired:       r.Expired,
	}
	out.Name, out.NameError = encodeField(r.Name, nameEnc)
	out.Value, out.ValueError = encodeField(r.Value, valueEnc)
	return out
}

func encodeField(data []byte, enc Encoding) (val *JSONText, errText *string) {
	s, err := Encode(data, enc)
	if err != nil {
		msg := "invalid data for " + string(enc)
		return nil, &msg
	}
	t := JSONText(s)
	return &t, nil
}

// JSONText is a name or value written as Core's univalue writes strings:
// the bytes as they are, with only '"', '\\', control characters and DEL
// escaped. encoding/json would replace the bytes of code points above
// U+10FFFF, which Core's utf8 encoding accepts, with U+FFFD.
type JSONText string

// MarshalJSON writes the string's bytes unchanged between quotes.
func (s JSONText) MarshalJSON() ([]byte, error) {
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, len(s)+2)
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c < 0x20 || c == 0x7f:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"'), nil
}

// NameBytes is the name an answer carries, read in the encoding the answer
// names, not the one asked for: a server may ignore the request.
func (j *NameShowJSON) NameBytes() ([]byte, error) {
	return fieldBytes(j.Name, j.NameError, j.NameEncoding, "name")
}

// ValueBytes is the value an answer carries, read as NameBytes reads the
// name.
func (j *NameShowJSON) ValueBytes() ([]byte, error) {
	return fieldBytes(j.Value, j.ValueError, j.ValueEncoding, "value")
}

// Reencode rewrites an answer's name and value in the given encodings,
// whatever encodings the server wrote them in.
func (j *NameShowJSON) Reencode(nameEnc, valueEnc Encoding) error {
	name, err := j.NameBytes()
	if err != nil {
		return err
	}
	value, err := j.ValueBytes()
	if err != nil {
		return err
	}
	j.Name, j.NameError = encodeField(name, nameEnc)
	j.Value, j.ValueError = encodeField(value, valueEnc)
	j.NameEncoding, j.ValueEncoding = nameEnc, valueEnc
	return nil
}

func fieldBytes(v *JSONText, errText *string, enc Encoding, what string) ([]byte, error) {
	if v == nil {
		if errText != nil {
			return nil, fmt.Errorf("the answer has no %s: %s", what, *errText)
		}
		return nil, fmt.Errorf("the answer has no %s", what)
	}
	if enc == "" {
		enc = EncodingASCII // Core always names it; ascii is its default
	}
	return Decode(string(*v), enc)
}
