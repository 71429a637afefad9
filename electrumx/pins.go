package electrumx

import (
	"bytes"
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

// PinStore decides on first use how each TLS server is trusted, as
// Electrum does. Most Namecoin servers use self-signed certificates: the
// certificate is pinned. A server whose certificate a certificate
// authority vouches for (for its host name) is pinned as CA-signed
// instead and checked against the authorities from then on, so that its
// routine renewals (Let's Encrypt's, every 60-90 days) keep working. Pins
// live in a JSON file (server address -> SHA-256 of the certificate, hex,
// or "ca"); deleting a server's line, or calling Forget, re-pins it on the
// next connection. The zero value keeps pins in memory only.
type PinStore struct {
	// Roots are the certificate authorities; nil: the system's.
	Roots *x509.CertPool

	path string
	mu   sync.Mutex
	pins map[string]string
}

// pinCA is the pin of a server trusted through certificate authorities.
const pinCA = "ca"

// OpenPinStore loads the pins at path; a missing file is an empty store.
// The file is read again before any pin is added or refused, so that an
// entry deleted while ncspv runs is gone at the next connection.
func OpenPinStore(path string) (*PinStore, error) {
	p := &PinStore{path: path}
	if err := p.reloadLocked(); err != nil {
		return nil, err
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

// Check decides on first use how server is trusted, from the certificate
// chain it presents (leaf first), and holds it to that afterwards.
func (p *PinStore) Check(server Server, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("server sent no TLS certificate")
	}
	key := server.Addr()
	got := Fingerprint(chain[0])
	p.mu.Lock()
	want, pinned := p.pins[key]
	p.mu.Unlock()
	if pinned && want == got {
		return nil
	}
	// Only now the chain check, outside the lock: it costs more than a
	// lookup's other work, and self-signed servers never need it.
	caErr := p.verifyCA(server, chain)
	if pinned && want == pinCA && caErr == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A new pin or a refusal: the file decides, since the user may have
	// deleted the entry while we run, as a refusal tells them to.
	if err := p.reloadLocked(); err != nil {
		return err
	}
	if want, pinned = p.pins[key]; !pinned {
		p.pins[key] = got
		if caErr == nil {
			p.pins[key] = pinCA
		}
		return p.saveLocked()
	}
	switch {
	case want == got:
		return nil
	case want == pinCA && caErr == nil:
		return nil
	case want == pinCA:
		return fmt.Errorf("%w: %s had a certificate signed by a certificate authority when "+
			"first seen, and presents one that is not (%v); if its operator really "+
			"moved to a self-signed certificate, delete the %q entry from %s and connect again",
			ErrCertificateChanged, server, caErr, key, p.path)
	}
	return fmt.Errorf("%w: %s presented sha256 %s, pinned %s; if its operator "+
		"really replaced the certificate, delete the %q entry from %s "+
		"and connect again",
		ErrCertificateChanged, server, got, want, key, p.path)
}

// reloadLocked reads the pins file again (a missing file: no pins).
func (p *PinStore) reloadLocked() error {
	if p.path == "" {
		if p.pins == nil {
			p.pins = map[string]string{} // the zero PinStore pins in memory
		}
		return nil
	}
	pins := map[string]string{}
	b, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read TLS pins: %w", err)
	default:
		if err := json.Unmarshal(b, &pins); err != nil {
			return fmt.Errorf("TLS pins file %s is not valid JSON: %w", p.path, err)
		}
	}
	p.pins = pins
	return nil
}

// errSelfSigned: no authority vouches for a certificate that signs itself.
var errSelfSigned = errors.New("the certificate is self-signed")

// verifyCA checks the chain against the certificate authorities for the
// server's host name. A self-signed certificate, what most Namecoin
// servers have, is refused without loading the system's authorities
// (megabytes of resident memory for a check that cannot pass).
func (p *PinStore) verifyCA(server Server, chain []*x509.Certificate) error {
	leaf := chain[0]
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		return errSelfSigned
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: server.Host, Roots: p.Roots, Intermediates: inter})
	return err
}

// Forget removes a server's pin so that the next connection pins anew.
func (p *PinStore) Forget(server Server) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.reloadLocked(); err != nil {
		return err
	}
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

// tlsConfig verifies the server by its pin only (which may say "through
// the certificate authorities"): crypto/tls's own check would refuse the
// self-signed certificates most Namecoin servers use.
func (p *PinStore) tlsConfig(server Server) *tls.Config {
	return &tls.Config{
		ServerName:         server.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return p.Check(server, cs.PeerCertificates)
		},
	}
}
