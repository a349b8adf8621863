package ocspclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// testCA is a CA made in Go, for table tests of Parse with responses the
// test signs as it likes (fault injection: the openssl responder cannot
// sign with a wrong key or a stale date on request).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTestCA makes a self-signed CA named name.
func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	return &testCA{cert: createCert(t, tmpl, tmpl, key, key), key: key}
}

// issue makes a certificate with serial; eku is its extended key usage.
func (ca *testCA) issue(t *testing.T, serial int64, eku ...x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: eku,
	}
	return createCert(t, tmpl, ca.cert, key, ca.key), key
}

// respond signs an OCSP response with signer's key, embedding signer's
// certificate unless it is issuer (tmpl.Certificate may embed one
// anyway); its cert ID hashes name issuer.
func respond(t *testing.T, issuer, signer *x509.Certificate, key crypto.Signer, tmpl ocsp.Response) []byte {
	t.Helper()
	if signer != issuer {
		tmpl.Certificate = signer
	}
	raw, err := ocsp.CreateResponse(issuer, signer, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func createCert(t *testing.T, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
