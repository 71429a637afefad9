package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ncspv/ncspv/spv"
	"github.com/ncspv/ncspv/tor"
)

// nameShowArgs are name_show's arguments in any of the accepted forms.
type nameShowArgs struct {
	name          string
	nameEncoding  spv.Encoding
	valueEncoding spv.Encoding
	streamID      string
	allowExpired  bool
}

type showOptions struct {
	StreamID      *string `json:"streamID"`
	NameEncoding  *string `json:"nameEncoding"`
	ValueEncoding *string `json:"valueEncoding"`
	AllowExpired  *bool   `json:"allowExpired"`
}

func badParams(format string, args ...any) *Error {
	return &Error{CodeInvalidParams, fmt.Sprintf(format, args...)}
}

// parseNameShow accepts Core's [name, {options}], Electrum-NMC's positional
// [name, nameEncoding, valueEncoding, streamID] and named parameters
// ({"name"|"identifier", "options", "stream_id", "name_encoding",
// "value_encoding"}).
func parseNameShow(params json.RawMessage) (nameShowArgs, *Error) {
	a := nameShowArgs{nameEncoding: spv.EncodingASCII, valueEncoding: spv.EncodingASCII}
	p := bytes.TrimSpace(params)
	var opts showOptions
	var eNameEnc, eValueEnc, eStream string
	switch {
	case len(p) == 0 || string(p) == "null":
		return a, badParams("name_show needs a name")
	case p[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(p, &list); err != nil {
			return a, badParams("params: %v", err)
		}
		if len(list) == 0 || len(list) > 4 {
			return a, badParams("name_show takes a name and options")
		}
		if err := json.Unmarshal(list[0], &a.name); err != nil {
			return a, badParams("name must be a string")
		}
		if len(list) >= 2 {
			second := bytes.TrimSpace(list[1])
			switch {
			case len(second) > 0 && second[0] == '{':
				if len(list) > 2 {
					return a, badParams("name_show takes a name and one options object")
				}
				if err := json.Unmarshal(second, &opts); err != nil {
					return a, badParams("options: %v", err)
				}
			default: // Electrum-NMC: name_encoding, value_encoding, stream_id
				dst := []*string{&eNameEnc, &eValueEnc, &eStream}
				for i, raw := range list[1:] {
					if string(raw) == "null" {
						continue
					}
					if err := json.Unmarshal(raw, dst[i]); err != nil {
						return a, badParams("argument %d must be a string", i+2)
					}
				}
			}
		}
	case p[0] == '{':
		var named struct {
			Name          *string     `json:"name"`
			Identifier    *string     `json:"identifier"`
			Options       showOptions `json:"options"`
			StreamID      string      `json:"stream_id"`
			NameEncoding  string      `json:"name_encoding"`
			ValueEncoding string      `json:"value_encoding"`
		}
		if err := json.Unmarshal(p, &named); err != nil {
			return a, badParams("params: %v", err)
		}
		switch {
		case named.Name != nil:
			a.name = *named.Name
		case named.Identifier != nil:
			a.name = *named.Identifier
		default:
			return a, badParams("name_show needs a name")
		}
		opts = named.Options
		eNameEnc, eValueEnc, eStream = named.NameEncoding, named.ValueEncoding, named.StreamID
	default:
		return a, badParams("params must be an array or an object")
	}
	if opts.StreamID != nil && eStream != "" {
		return a, badParams("stream ID given both Electrum-NMC and Namecoin Core style")
	}
	if opts.StreamID != nil {
		a.streamID = *opts.StreamID
	} else {
		a.streamID = eStream
	}
	if opts.AllowExpired != nil {
		a.allowExpired = *opts.AllowExpired
	}
	for _, e := range []struct {
		dst       *spv.Encoding
		core      *string
		electrum  string
		fieldName string
	}{
		{&a.nameEncoding, opts.NameEncoding, eNameEnc, "nameEncoding"},
		{&a.valueEncoding, opts.ValueEncoding, eValueEnc, "valueEncoding"},
	} {
		if e.core != nil {
			// Core keeps the default for an encoding it does not know
			// (EncodingFromOptionsJson), and so do we.
			if enc, err := spv.ParseEncoding(*e.core); err == nil {
				*e.dst = enc
			}
			continue
		}
		if e.electrum == "" {
			continue
		}
		enc, err := spv.ParseEncoding(e.electrum)
		if err != nil {
			return a, badParams("%s: %v", e.fieldName, err)
		}
		*e.dst = enc
	}
	return a, nil
}

func (s *Server) nameShow(ctx context.Context, params json.RawMessage) (any, *Error) {
	a, perr := parseNameShow(params)
	if perr != nil {
		return nil, perr
	}
	name, err := spv.Decode(a.name, a.nameEncoding)
	if err != nil {
		return nil, &Error{CodeInvalidEncoding, fmt.Sprintf("Name/value is invalid for encoding %s", a.nameEncoding)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	res, err := s.cfg.Backend.NameShow(ctx, name, spv.LookupOptions{StreamID: a.streamID, AllowExpired: a.allowExpired})
	if err != nil {
		return nil, s.lookupError(err, a)
	}
	return res.JSON(a.nameEncoding, a.valueEncoding), nil
}

// lookupError maps engine errors to Core's codes. Names and stream IDs are
// logged at debug level only.
func (s *Server) lookupError(err error, a nameShowArgs) *Error {
	var ne *spv.NameError
	switch {
	case errors.As(err, &ne):
		return &Error{CodeNameNotFound, ne.Error()}
	case errors.Is(err, spv.ErrSyncing):
		var pe *tor.ProxyUnreachableError
		if errors.As(err, &pe) { // why it cannot catch up, for the user
			return &Error{CodeSyncing, "ncspv is still syncing block headers: " + pe.Error()}
		}
		return &Error{CodeSyncing, "ncspv is still syncing block headers"}
	}
	s.log.Debug("name_show failed", "name", a.name, "stream", a.streamID, "err", err)
	switch {
	case errors.Is(err, spv.ErrAllServersLied):
		s.log.Warn("name lookup failed: every server failed verification")
		return &Error{CodeMisc, "every ElectrumX server that answered failed verification"}
	case errors.Is(err, spv.ErrNoServer):
		var pe *tor.ProxyUnreachableError
		if errors.As(err, &pe) { // one cause for every server: say it
			s.log.Warn("name lookup failed: no ElectrumX server reachable", "err", pe)
			return &Error{CodeMisc, "no ElectrumX server reachable: " + pe.Error()}
		}
		s.log.Warn("name lookup failed: no ElectrumX server reachable")
		return &Error{CodeMisc, "no ElectrumX server reachable"}
	case errors.Is(err, spv.ErrUnprovable): // says why, naming a height only
		return &Error{CodeMisc, err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{CodeMisc, "name lookup timed out"}
	}
	s.log.Warn("name lookup failed", "err", err)
	return &Error{CodeMisc, "name lookup failed"}
}

func (s *Server) getBlockCount(context.Context, json.RawMessage) (any, *Error) {
	return s.cfg.Backend.State().Height, nil
}

func (s *Server) getBlockchainInfo(context.Context, json.RawMessage) (any, *Error) {
	st := s.cfg.Backend.State()
	return map[string]any{
		"chain":                s.cfg.Chain,
		"blocks":               st.Height,
		"headers":              st.Height,
		"bestblockhash":        st.TipHash,
		"verificationprogress": verificationProgress(st),
		"initialblockdownload": !st.Synced,
		"warnings":             st.Warning,
		// Not in Core: how far the chain's proof of work is checked
		// (docs/sampled-sync.md).
		"verification":   st.Verification,
		"verifiedheight": st.VerifiedHeight,
	}, nil
}

// verificationProgress is below 1 until a sync has completed: the share
// of the tip a server announced, or 0 before any server has. "headers"
// is the verified tip itself, since an announced tip is only a claim.
func verificationProgress(st spv.State) float64 {
	switch {
	case st.Synced:
		return 1
	case st.ServerHeight > 0:
		return min(float64(st.Height)/float64(st.ServerHeight), 0.9999)
	}
	return 0
}

func (s *Server) stop(context.Context, json.RawMessage) (any, *Error) {
	if s.cfg.Stop == nil {
		return nil, &Error{CodeMisc, "stop is not available"}
	}
	go s.cfg.Stop()
	return "ncspv stopping", nil
}

func (s *Server) help(context.Context, json.RawMessage) (any, *Error) {
	return strings.Join([]string{
		"name_show \"name\" ( {\"streamID\":\"…\",\"nameEncoding\":\"ascii|utf8|hex\",\"valueEncoding\":\"…\",\"allowExpired\":bool} )",
		"getblockchaininfo",
		"getblockcount",
		"help",
		"stop",
	}, "\n"), nil
}
