package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	root, inter := caPair(t)
	ca := []*x509.Certificate{root}
	tests := []struct {
		name string
		p    Policy
		want string // in the error; "" for valid
	}{
		{"zero but the CA: require, no revocation check", Policy{CAs: ca}, ""},
		{"leaf with a CRL file", Policy{CAs: ca, Revocation: RevocationLeaf, CRLFiles: []string{"x.crl"}}, ""},
		{"chain with OCSP over https", Policy{CAs: ca, Revocation: RevocationChain, OCSP: true, OCSPResponder: "https://ocsp.example/"}, ""},
		{"chain, intermediate and root", Policy{CAs: []*x509.Certificate{inter, root}, Revocation: RevocationChain, OCSP: true}, ""},
		{"chain, intermediate without its root", Policy{CAs: []*x509.Certificate{inter}, Revocation: RevocationChain, OCSP: true}, "not in ca"},
		{"leaf, intermediate without its root", Policy{CAs: []*x509.Certificate{inter}, Revocation: RevocationLeaf, OCSP: true}, ""},
		{"no CA", Policy{}, "no CA"},
		{"a client certificate as CA", Policy{CAs: []*x509.Certificate{{BasicConstraintsValid: true}}}, "not a CA certificate"},
		{"a v1 certificate as CA", Policy{CAs: []*x509.Certificate{{}}}, "not a CA certificate"},
		{"bad mode", Policy{CAs: ca, Mode: "sometimes"}, "mode"},
		{"bad revocation", Policy{CAs: ca, Revocation: "all"}, "revocation"},
		{"bad unknown", Policy{CAs: ca, Unknown: "maybe"}, "revocation_unknown"},
		{"negative depth", Policy{CAs: ca, VerifyDepth: -1}, "verify_depth"},
		{"check without source", Policy{CAs: ca, Revocation: RevocationLeaf}, "needs crl"},
		{"ldap responder", Policy{CAs: ca, Revocation: RevocationLeaf, OCSP: true, OCSPResponder: "ldap://x/"}, "ocsp_responder"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}

func TestPolicyClientAuth(t *testing.T) {
	if got := (Policy{}).ClientAuth(); got != tls.RequireAndVerifyClientCert {
		t.Errorf("zero mode: %v, want RequireAndVerifyClientCert", got)
	}
	if got := (Policy{Mode: ModeOptional}).ClientAuth(); got != tls.VerifyClientCertIfGiven {
		t.Errorf("optional: %v, want VerifyClientCertIfGiven", got)
	}
}

// TestRefusalError: the error says the certificate and why, and leaves
// "client certificate refused (reason)" to whoever logs it: the server's
// log line and handshake error said it twice.
func TestRefusalError(t *testing.T) {
	r := &Refusal{Reason: ReasonRevoked, Subject: "CN=a", Serial: "1f", Depth: 1, Detail: "crl x: revoked"}
	want := `"CN=a" serial 1f at depth 1: crl x: revoked`
	if r.Error() != want {
		t.Errorf("Error() = %q, want %q", r.Error(), want)
	}
	if wrapped := fmt.Errorf("client certificate refused (%s): %w", r.Reason, r).Error(); strings.Count(wrapped, "refused") != 1 {
		t.Errorf("wrapped as the server does: %q, says refused more than once", wrapped)
	}
	if got := (&Refusal{Reason: ReasonNoCertificate, Detail: "no client certificate given"}).Error(); got != "no client certificate given" {
		t.Errorf("Error() without a certificate = %q", got)
	}
	if r.RefusalReason() != "revoked" {
		t.Errorf("RefusalReason() = %q", r.RefusalReason())
	}
}

func TestSoftFailLog(t *testing.T) {
	var s softFailLog
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		log  bool
		left int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{11 * time.Second, false, 0},
		{time.Minute, true, 1},
	}
	for _, st := range steps {
		log, left := s.note(t0.Add(st.at))
		if log != st.log || left != st.left {
			t.Errorf("at %v: note = %v, %d; want %v, %d", st.at, log, left, st.log, st.left)
		}
	}
}

// caPair makes a self-signed root and an intermediate it signs.
func caPair(t *testing.T) (root, inter *x509.Certificate) {
	t.Helper()
	mk := func(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	root, rootKey := mk("root", nil, nil)
	inter, _ = mk("intermediate", root, rootKey)
	return root, inter
}
