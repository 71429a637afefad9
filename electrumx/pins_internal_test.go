package electrumx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

func testCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestVerifyCASkipsSelfSigned: a self-signed certificate is told apart
// before the system's authorities are loaded; an issued one is checked
// against the authorities, and a forged self-signature does not pass as
// self-signed.
func TestVerifyCASkipsSelfSigned(t *testing.T) {
	server := Server{Host: "127.0.0.1", Port: 50002, TLS: true}
	valid := func(serial int64, cn string, ca bool) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: ca, BasicConstraintsValid: ca,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	self, _ := testCert(t, valid(1, "self", false), nil, nil)
	// No roots at all: were the authorities consulted, the error would be
	// "unknown authority", not errSelfSigned.
	p := &PinStore{Roots: x509.NewCertPool()}
	if err := p.verifyCA(server, []*x509.Certificate{self}); !errors.Is(err, errSelfSigned) {
		t.Fatalf("self-signed: %v", err)
	}
	ca, caKey := testCert(t, valid(2, "ca", true), nil, nil)
	// Issuer and subject names equal, signed by another key: not
	// self-signed, so checked (and refused) by the authorities.
	impostor, _ := testCert(t, valid(3, "ca", false), ca, caKey)
	if err := p.verifyCA(server, []*x509.Certificate{impostor}); err == nil || errors.Is(err, errSelfSigned) {
		t.Fatalf("issued under the same name: %v", err)
	}
	leaf, _ := testCert(t, valid(4, "leaf", false), ca, caKey)
	p.Roots.AddCert(ca)
	if err := p.verifyCA(server, []*x509.Certificate{leaf}); err != nil {
		t.Fatalf("issued by a trusted authority: %v", err)
	}
}
