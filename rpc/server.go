// Package rpc serves the JSON-RPC that ncprop279 (through ncdns) and other
// Namecoin Core clients call: name_show with Core's answers and error codes,
// plus getblockchaininfo, getblockcount, stop and help. It authenticates
// every request (user/password or a cookie file), limits request sizes and
// concurrency, and never panics on input.
package rpc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncspv/ncspv/spv"
)

// Backend answers lookups; *spv.Engine implements it.
type Backend interface {
	NameShow(ctx context.Context, name []byte, opts spv.LookupOptions) (*spv.NameResult, error)
	State() spv.State
}

// JSON-RPC error codes, as Namecoin Core uses them.
const (
	CodeMisc         = -1  // RPC_MISC_ERROR
	CodeNameNotFound = -4  // RPC_WALLET_ERROR: never existed or expired
	CodeSyncing      = -10 // RPC_CLIENT_IN_INITIAL_DOWNLOAD
	// CodeInvalidEncoding: the name is not valid in its nameEncoding.
	CodeInvalidEncoding = -1000  // RPC_NAME_INVALID_ENCODING
	CodeParseError      = -32700 // RPC_PARSE_ERROR
	CodeInvalidRequest  = -32600 // RPC_INVALID_REQUEST
	CodeMethodNotFound  = -32601 // RPC_METHOD_NOT_FOUND
	CodeInvalidParams   = -32602 // RPC_INVALID_PARAMS
)

// Config wires a Server.
type Config struct {
	Backend Backend
	// Chain is what getblockchaininfo reports: "main", "test" or "regtest".
	Chain string
	// User and Pass enable Basic authentication. When Pass is empty a
	// cookie file is written at CookiePath instead (Core's __cookie__).
	User, Pass string
	CookiePath string
	// CookieMode is the cookie file's mode (default 0600; Core's
	// -rpccookieperms: 0640 for group, 0644 for all). CookieGID, if not
	// -1, is its group, so that another service's user (ncprop279's, in
	// Tor's group) can read it.
	CookieMode os.FileMode
	CookieGID  int
	// MaxBody caps a request body (default 1 MiB).
	MaxBody int64
	// MaxConcurrent caps requests served at once (default 64); others wait.
	MaxConcurrent int
	// LookupTimeout bounds one name_show (default 30 s).
	LookupTimeout time.Duration
	// Stop is called by the "stop" method (the daemon's shutdown path).
	Stop   func()
	Logger *slog.Logger
}

// Server is the HTTP JSON-RPC handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	authSum [sha256.Size]byte // SHA-256 of "user:pass"
	sem     chan struct{}
	methods map[string]method
}

type method func(ctx context.Context, params json.RawMessage) (any, *Error)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// CookieUser is the user name of cookie authentication (Core's).
const CookieUser = "__cookie__"

// New makes a server. Without a password it writes a fresh cookie file
// (mode 0600) that Close removes.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("rpc: no backend")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("subsys", "RPCS"), sem: make(chan struct{}, cfg.MaxConcurrent)}
	user, pass := cfg.User, cfg.Pass
	if pass == "" {
		if cfg.CookiePath == "" {
			return nil, errors.New("rpc: set a password or a cookie path")
		}
		var err error
		if user, pass, err = writeCookie(cfg.CookiePath, cfg.CookieMode, cfg.CookieGID); err != nil {
			return nil, err
		}
	} else if user == "" {
		return nil, errors.New("rpc: a password needs a user name")
	}
	s.authSum = sha256.Sum256([]byte(user + ":" + pass))
	s.methods = map[string]method{
		"name_show":         s.nameShow,
		"getblockcount":     s.getBlockCount,
		"getblockchaininfo": s.getBlockchainInfo,
		"stop":              s.stop,
		"help":              s.help,
	}
	return s, nil
}

// writeCookie writes __cookie__:<64 hex> atomically with mode (0600 if
// zero) and, unless gid is -1 or 0, that group.
func writeCookie(path string, mode os.FileMode, gid int) (string, string, error) {
	if mode == 0 {
		mode = 0o600
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	pass := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("cookie directory: %w", err)
	}
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, []byte(CookieUser+":"+pass), 0o600)
	if err == nil && gid > 0 {
		err = os.Chown(tmp, -1, gid)
	}
	if err == nil {
		err = os.Chmod(tmp, mode) // after the group: never readable by the wrong one
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp) // a full disk leaves an empty one behind
		return "", "", fmt.Errorf("write cookie: %w", err)
	}
	return CookieUser, pass, nil
}

// Close removes the cookie file it wrote.
func (s *Server) Close() error {
	if s.cfg.Pass == "" && s.cfg.CookiePath != "" {
		if err := os.Remove(s.cfg.CookiePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// NewHTTPServer wraps the handler with header and idle timeouts, so a
// slow or idle client cannot hold connections open.
func (s *Server) NewHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return false
	}
	sum := sha256.Sum256(raw)
	return subtle.ConstantTimeCompare(sum[:], s.authSum[:]) == 1
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

// bodyTimeout bounds reading one request body: a client that sends its
// body slowly is cut off instead of holding a connection for long.
const bodyTimeout = 10 * time.Second

// ServeHTTP implements http.Handler: POST / only, authenticated.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		// Core serves / and its wallets' paths; ncspv has no wallet.
		http.NotFound(w, r)
		return
	}
	if !s.authorized(r) {
		// A short pause makes guessing slow, as Core does.
		time.Sleep(250 * time.Millisecond)
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "JSONRPC server handles only POST requests", http.StatusMethodNotAllowed)
		return
	}
	// The body is read whole, within a size and a time limit, before the
	// request takes one of the MaxConcurrent slots: clients that send
	// their bodies slowly must not hold the slots others need.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := readBody(w, r, s.cfg.MaxBody)
	// Read: the deadline goes, or the server's background read would hit
	// it and cancel a lookup still running.
	rc.SetReadDeadline(time.Time{})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request", http.StatusBadRequest)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-r.Context().Done():
		return
	}
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		var reqs []json.RawMessage
		if err := json.Unmarshal(body, &reqs); err != nil {
			s.reply(w, request{}, nil, &Error{CodeParseError, "Parse error"})
			return
		}
		out := make([]json.RawMessage, 0, len(reqs))
		for _, raw := range reqs {
			req, res, rerr := s.handleOne(r.Context(), raw)
			out = append(out, encodeReply(req, res, rerr))
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(out)
		w.Write(append(b, '\n'))
		return
	}
	req, res, rerr := s.handleOne(r.Context(), body)
	s.reply(w, req, res, rerr)
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

// handleOne decodes and runs one request, recovering from any panic.
func (s *Server) handleOne(ctx context.Context, raw []byte) (req request, res any, rerr *Error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in RPC handler", "method", req.Method, "panic", p)
			res, rerr = nil, &Error{CodeMisc, "internal error"}
		}
	}()
	if err := json.Unmarshal(raw, &req); err != nil {
		return req, nil, &Error{CodeParseError, "Parse error"}
	}
	if req.Method == "" {
		return req, nil, &Error{CodeInvalidRequest, "Missing method"}
	}
	m, ok := s.methods[req.Method]
	if !ok {
		return req, nil, &Error{CodeMethodNotFound, "Method not found"}
	}
	res, rerr = m(ctx, req.Params)
	return req, res, rerr
}

func encodeReply(req request, res any, rerr *Error) json.RawMessage {
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	var b []byte
	if req.JSONRPC == "2.0" {
		m := map[string]any{"jsonrpc": "2.0", "id": id}
		if rerr != nil {
			m["error"] = rerr
		} else {
			m["result"] = res
		}
		b, _ = json.Marshal(m)
	} else {
		// JSON-RPC 1.0 (what btcd's rpcclient and so ncprop279 send):
		// result, error and id always present, as Core answers.
		var e any
		if rerr != nil {
			e = rerr
			res = nil
		}
		b, _ = json.Marshal(struct {
			Result any             `json:"result"`
			Error  any             `json:"error"`
			ID     json.RawMessage `json:"id"`
		}{res, e, id})
	}
	return b
}

// reply writes one response with Core's HTTP statuses: JSON-RPC 2.0 is
// always 200; 1.0 errors are 500, 404 for an unknown method and 400 for
// an invalid request.
func (s *Server) reply(w http.ResponseWriter, req request, res any, rerr *Error) {
	status := http.StatusOK
	if rerr != nil && req.JSONRPC != "2.0" {
		switch rerr.Code {
		case CodeMethodNotFound:
			status = http.StatusNotFound
		case CodeInvalidRequest:
			status = http.StatusBadRequest
		default:
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(encodeReply(req, res, rerr), '\n'))
}
