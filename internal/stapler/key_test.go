package stapler

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// notCACopy returns a certificate with ca's name and key that does not
// verify what ca issues (basic constraints say it is no CA), self-signed
// by another key.
func notCACopy(t *testing.T, ca *testenv.OpenSSLCA) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), RawSubject: ca.Cert.RawSubject,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ca.Cert.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNameAndKey: nameAndKey reads from the DER the bytes x509 keeps as
// RawSubject and RawSubjectPublicKeyInfo (what ocspclient.IDOf hashes),
// and refuses what is no certificate.
func TestNameAndKey(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	for _, c := range []*x509.Certificate{ca.Cert, leaf.Cert, crossSigned(t, ca), notCACopy(t, ca)} {
		subject, spki, ok := nameAndKey(c.Raw)
		if !ok || !bytes.Equal(subject, c.RawSubject) || !bytes.Equal(spki, c.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: nameAndKey = %x, %x, %v; want RawSubject and RawSubjectPublicKeyInfo", c.Subject, subject, spki, ok)
		}
	}
	for _, der := range [][]byte{nil, {0x30, 0x00}, ca.Cert.Raw[:len(ca.Cert.Raw)/2]} {
		if _, _, ok := nameAndKey(der); ok {
			t.Errorf("nameAndKey(%x) ok", der)
		}
	}
}

// TestKeyOf: one leaf shares its key with every chain whose second
// certificate has the issuer's name and key (the intermediate, its
// cross-signed copy), and with no other.
func TestKeyOf(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	other := newIntermediate(t)
	renewed := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	chain := func(certs ...[]byte) certKey { return keyOf(&tls.Certificate{Certificate: certs}) }
	base := chain(leaf.Cert.Raw, ca.Cert.Raw)
	for _, tt := range []struct {
		name string
		key  certKey
		same bool
	}{
		{"with a root after the intermediate", chain(leaf.Cert.Raw, ca.Cert.Raw, other.Cert.Raw), true},
		{"cross-signed intermediate", chain(leaf.Cert.Raw, crossSigned(t, ca).Raw), true},
		{"same name and key, not a CA", chain(leaf.Cert.Raw, notCACopy(t, ca).Raw), true},
		{"another issuer", chain(leaf.Cert.Raw, other.Cert.Raw), false},
		{"another leaf", chain(renewed.Cert.Raw, ca.Cert.Raw), false},
		{"leaf alone", chain(leaf.Cert.Raw), false},
		{"unreadable second certificate", chain(leaf.Cert.Raw, []byte{0x30, 0x00}), false},
		{"empty chain", chain(), false},
	} {
		if got := tt.key == base; got != tt.same {
			t.Errorf("%s: same key %v, want %v", tt.name, got, tt.same)
		}
	}
}

// TestIssuerCopyNotCAFirst: a site whose chain carries a certificate of
// the issuer's name and key that does not verify the leaf is taken up
// first (no staple, a warning); a site with the real intermediate, same
// key, then gets its staple, and the first site shares it.
func TestIssuerCopyNotCAFirst(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test"}})
	startFakeResponder(t, ca, "good")
	recs := &logRecords{}
	s := newStaplerOpts(t, recs, Options{})
	good := loadPair(t, leaf)
	bad := &tls.Certificate{Certificate: [][]byte{good.Certificate[0], notCACopy(t, ca).Raw}, PrivateKey: good.PrivateKey}
	s.Prepare(bad)
	if n := recs.count("WARN ocsp stapling: the certificate chain lacks the issuer, no staple"); n != 1 {
		t.Fatalf("logged %q, want the chain-lacks-issuer warning", recs.messages())
	}
	s.Prepare(good)
	waitFor(t, "a staple", func() bool { return s.Staple(good).OCSPStaple != nil })
	if s.Staple(bad).OCSPStaple == nil {
		t.Error("the chain with the copy gets no staple")
	}
	if st := s.Status(); len(st) != 1 {
		t.Errorf("Status = %+v, want one entry", st)
	}
}
