package clientauth

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	ca := []*x509.Certificate{{}}
	tests := []struct {
		name string
		p    Policy
		want string // in the error; "" for valid
	}{
		{"zero but the CA: require, no revocation check", Policy{CAs: ca}, ""},
		{"leaf with a CRL file", Policy{CAs: ca, Revocation: RevocationLeaf, CRLFiles: []string{"x.crl"}}, ""},
		{"chain with OCSP over https", Policy{CAs: ca, Revocation: RevocationChain, OCSP: true, OCSPResponder: "https://ocsp.example/"}, ""},
		{"no CA", Policy{}, "no CA"},
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

func TestRefusalError(t *testing.T) {
	r := &Refusal{Reason: ReasonRevoked, Subject: "CN=a", Serial: "1f", Depth: 1, Detail: "crl x: revoked"}
	want := `client certificate refused (revoked): "CN=a" serial 1f at depth 1: crl x: revoked`
	if r.Error() != want {
		t.Errorf("Error() = %q, want %q", r.Error(), want)
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
