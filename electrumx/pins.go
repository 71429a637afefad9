package electrumx

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrCertificateChanged is wrapped when a server's TLS certificate differs
// from the one pinned on first use.
var ErrCertificateChanged = errors.New("server TLS certificate changed")

// PinStore pins each TLS server's certificate on first use, as Electrum
// does, since Namecoin servers use self-signed certificates. Pins live in a
// JSON file (server address -> SHA-256 of the certificate, hex); deleting a
// server's line, or calling Forget, re-pins it on the next connection.
// The zero value keeps pins in memory only.
type PinStore struct {
	path string
	mu   sync.Mutex
	pins map[string]string
}

// OpenPinStore loads the pins at path; a missing file is an empty store.
func OpenPinStore(path string) (*PinStore, error) {
	p := &PinStore{path: path, pins: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read TLS pins: %w", err)
	}
	if err := json.Unmarshal(b, &p.pins); err != nil {
		return nil, fmt.Errorf("TLS pins file %s is not valid JSON: %w", path, err)
	}
	return p, nil
}

// Path is the pins file.
func (p *PinStore) Path() string { return p.path }

// Fingerprint is the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Check pins cert for server on first use and compares it afterwards.
func (p *PinStore) Check(server Server, cert *x509.Certificate) error {
	key := server.Addr()
	got := Fingerprint(cert)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pins == nil {
		p.pins = map[string]string{} // the zero PinStore pins in memory
	}
	want, ok := p.pins[key]
	if ok {
		if want == got {
			return nil
		}
		return fmt.Errorf("%w: %s presented sha256 %s, pinned %s; if its operator "+
			"really replaced the certificate, delete the %q entry from %s "+
			"and connect again",
			ErrCertificateChanged, server, got, want, key, p.path)
	}
	p.pins[key] = got
	return p.saveLocked()
}

// Forget removes a server's pin so that the next connection pins anew.
func (p *PinStore) Forget(server Server) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pins[server.Addr()]; !ok {
		return fmt.Errorf("no certificate pinned for %s in %s", server.Addr(), p.path)
	}
	delete(p.pins, server.Addr())
	return p.saveLocked()
}

// saveLocked writes the pins atomically (temp file, fsync, rename).
func (p *PinStore) saveLocked() error {
	if p.path == "" {
		return nil // in-memory store (tests)
	}
	b, err := json.MarshalIndent(p.pins, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".tls-pins-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.path)
}

// tlsConfig verifies the server by its pin only: there is no CA to trust
// for self-signed Namecoin servers.
func (p *PinStore) tlsConfig(server Server) *tls.Config {
	return &tls.Config{
		ServerName:         server.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no TLS certificate")
			}
			return p.Check(server, cs.PeerCertificates[0])
		},
	}
}
