package spv

// NameShowJSON is a name_show result in Namecoin Core's field order. When
// the name or value cannot be written in the requested encoding, Core
// replaces the field with name_error / value_error.
type NameShowJSON struct {
	Name          *string  `json:"name,omitempty"`
	NameError     *string  `json:"name_error,omitempty"`
	NameEncoding  Encoding `json:"name_encoding"`
	Value         *string  `json:"value,omitempty"`
	ValueError    *string  `json:"value_error,omitempty"`
	ValueEncoding Encoding `json:"value_encoding"`
	TxID          string   `json:"txid"`
	Vout          uint32   `json:"vout"`
	Address       string   `json:"address"`
	Height        int32    `json:"height"`
	ExpiresIn     int32    `json:"expires_in"`
	Expired       bool     `json:"expired"`
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

func encodeField(data []byte, enc Encoding) (val, errText *string) {
	s, err := Encode(data, enc)
	if err != nil {
		msg := "invalid data for " + string(enc)
		return nil, &msg
	}
	return &s, nil
}
