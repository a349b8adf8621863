package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// serverCert is a TLS certificate for 127.0.0.1, ::1 and localhost, issued by
// a throwaway root.
type serverCert struct {
	rootPEM []byte         // the issuing root, PEM
	roots   *x509.CertPool // holds the issuing root
	certPEM []byte         // the leaf then the root, PEM
	keyPEM  []byte         // the leaf's private key, PKCS #8 PEM
	tls     tls.Certificate
}

// newServerCert generates a root and a leaf for Pebble's HTTPS listeners.
func newServerCert(t *testing.T) *serverCert {
	t.Helper()
	now := time.Now()
	rootKey := newKey(t)
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlspilot testenv root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER := createCert(t, root, root, rootKey, rootKey)
	rootCert, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatalf("parse root: %v", err)
	}
	leafKey := newKey(t)
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
	leafDER := createCert(t, leaf, rootCert, leafKey, rootKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	sc := &serverCert{
		rootPEM: pemBlock("CERTIFICATE", rootDER),
		roots:   x509.NewCertPool(),
		certPEM: append(pemBlock("CERTIFICATE", leafDER), pemBlock("CERTIFICATE", rootDER)...),
		keyPEM:  pemBlock("PRIVATE KEY", keyDER),
	}
	sc.roots.AddCert(rootCert)
	sc.tls, err = tls.X509KeyPair(sc.certPEM, sc.keyPEM)
	if err != nil {
		t.Fatalf("load key pair: %v", err)
	}
	return sc
}

// newKey generates an ECDSA P-256 key.
func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

// createCert signs template with parentKey and returns the DER.
func createCert(t *testing.T, template, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatalf("create certificate %q: %v", template.Subject.CommonName, err)
	}
	return der
}

// pemBlock encodes der as one PEM block of type typ.
func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
