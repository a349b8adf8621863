package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// ServerCert is a TLS certificate for 127.0.0.1, ::1 and localhost, issued
// by a throwaway root and valid for 24 hours. Start serves Pebble's ACME
// API and management interface with one.
type ServerCert struct {
	RootPEM []byte         // the issuing root, PEM
	Roots   *x509.CertPool // holds the issuing root
	CertPEM []byte         // the leaf then the root, PEM
	KeyPEM  []byte         // the leaf's private key, PKCS #8 PEM
	TLS     tls.Certificate
}

// NewServerCert generates a root and a leaf for Pebble's HTTPS listeners.
func NewServerCert() (*ServerCert, error) {
	now := time.Now()
	rootKey, err := newKey()
	if err != nil {
		return nil, err
	}
	leafKey, err := newKey()
	if err != nil {
		return nil, err
	}
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlspilot devca root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, rootCert, err := createCert(root, root, rootKey, rootKey)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, _, err := createCert(leaf, rootCert, leafKey, rootKey)
	if err != nil {
		return nil, err
	}
	return newServerCert(rootCert, rootDER, leafDER, leafKey)
}

// newServerCert assembles a ServerCert.
func newServerCert(root *x509.Certificate, rootDER, leafDER []byte, leafKey *ecdsa.PrivateKey) (*ServerCert, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: marshal key: %w", err)
	}
	sc := &ServerCert{
		RootPEM: pemBlock("CERTIFICATE", rootDER),
		Roots:   x509.NewCertPool(),
		CertPEM: append(pemBlock("CERTIFICATE", leafDER), pemBlock("CERTIFICATE", rootDER)...),
		KeyPEM:  pemBlock("PRIVATE KEY", keyDER),
	}
	sc.Roots.AddCert(root)
	sc.TLS, err = tls.X509KeyPair(sc.CertPEM, sc.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("server certificate: load key pair: %w", err)
	}
	return sc, nil
}

// newKey generates an ECDSA P-256 key.
func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server certificate: generate key: %w", err)
	}
	return k, nil
}

// createCert signs template with parentKey and returns the DER and the
// parsed certificate.
func createCert(template, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: create %q: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: parse %q: %w", template.Subject.CommonName, err)
	}
	return der, cert, nil
}

// pemBlock encodes der as one PEM block of type typ.
func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
