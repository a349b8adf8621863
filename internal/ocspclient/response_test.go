package ocspclient

import (
	"crypto"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func TestParse(t *testing.T) {
	ca := newTestCA(t, "CA")
	other := newTestCA(t, "other CA")
	leaf, _ := ca.issue(t, 100)
	delegate, delegateKey := ca.issue(t, 2, x509.ExtKeyUsageOCSPSigning)
	noEKU, noEKUKey := ca.issue(t, 3, x509.ExtKeyUsageServerAuth)
	otherDelegate, otherDelegateKey := other.issue(t, 2, x509.ExtKeyUsageOCSPSigning)
	now := time.Now()
	good := ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	leftOut, err := ocsp.CreateResponse(ca.cert, delegate, good, delegateKey) // good.Certificate is nil
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*ocsp.Response)) ocsp.Response { r := good; f(&r); return r }

	tests := []struct {
		name    string
		raw     []byte
		status  Status
		wantErr error  // nil: success; errAny: some error
		text    string // in the error, if set
	}{
		{"signed by issuer", respond(t, ca.cert, ca.cert, ca.key, good), Good, nil, ""},
		{"delegated responder", respond(t, ca.cert, delegate, delegateKey, good), Good, nil, ""},
		{"sha256 cert id", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.IssuerHash = crypto.SHA256 })), Good, nil, ""},
		{"revoked", respond(t, ca.cert, delegate, delegateKey, with(func(r *ocsp.Response) {
			r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, now.Add(-time.Hour), ocsp.KeyCompromise
		})), Revoked, nil, ""},
		{"unknown", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.Status = ocsp.Unknown })), Unknown, nil, ""},
		{"no nextUpdate, recent", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.NextUpdate = time.Time{} })), Good, nil, ""},
		{"delegated, certificate left out", leftOut, 0, ErrBadSignature, ""},
		{"issuer embedded", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.Certificate = ca.cert })), Good, nil, ""},
		{"delegate without OCSPSigning", respond(t, ca.cert, noEKU, noEKUKey, good), 0, ErrBadSignature, ""},
		{"delegate of another CA", respond(t, ca.cert, otherDelegate, otherDelegateKey, good), 0, ErrBadSignature, ""},
		{"signed by another CA", respond(t, ca.cert, other.cert, other.key, good), 0, ErrBadSignature, ""},
		{"other issuer's cert id", respond(t, other.cert, ca.cert, ca.key, good), 0, ErrWrongCertificate, ""},
		{"other serial", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.SerialNumber = big.NewInt(101) })), 0, ErrWrongCertificate, ""},
		{"delegate embedded, signed by another key", respond(t, ca.cert, delegate, other.key, good), 0, ErrBadSignature, ""},
		{"stale", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) {
			r.ThisUpdate, r.NextUpdate = now.Add(-2*time.Hour), now.Add(-time.Minute)
		})), 0, ErrStale, ""},
		{"no nextUpdate, old", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) {
			r.ThisUpdate, r.NextUpdate = now.Add(-DefaultValidity-time.Minute), time.Time{}
		})), 0, ErrStale, ""},
		{"from the future", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) {
			r.ThisUpdate, r.NextUpdate = now.Add(MaxClockSkew+time.Minute), now.Add(2*time.Hour)
		})), 0, ErrNotYetValid, ""},
		{"tryLater", ocsp.TryLaterErrorResponse, 0, errAny, "responder answered tryLater"},
		{"garbage", []byte("not der"), 0, errAny, "the responder's answer is not an OCSP response: asn1: "},
		{"html", []byte("<html>busy</html>"), 0, errAny, "the responder's answer is not an OCSP response: asn1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.raw, leaf, ca.cert, now)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.wantErr == nil:
				if r.Status != tt.status {
					t.Errorf("Status = %v, want %v", r.Status, tt.status)
				}
				if r.ID != IDOf(leaf, ca.cert) {
					t.Errorf("ID = %s, want %s", r.ID, IDOf(leaf, ca.cert))
				}
			case err == nil:
				t.Fatalf("Parse succeeded (status %v), want an error", r.Status)
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Parse: %v, want %v", err, tt.wantErr)
			case !strings.Contains(err.Error(), tt.text):
				t.Fatalf("Parse: %v, want it to say %q", err, tt.text)
			}
		})
	}
}

// errAny in a test table accepts any error.
var errAny = errors.New("any error")

func TestRefreshAt(t *testing.T) {
	tu := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		next, wantExpires, wantRefresh time.Time
	}{
		{tu.Add(4 * 24 * time.Hour), tu.Add(4 * 24 * time.Hour), tu.Add(2 * 24 * time.Hour)},
		{time.Time{}, tu.Add(DefaultValidity), tu.Add(DefaultValidity / 2)},
	}
	for _, tt := range tests {
		r := &Response{ThisUpdate: tu, NextUpdate: tt.next}
		if got := r.Expires(); !got.Equal(tt.wantExpires) {
			t.Errorf("next %v: Expires = %v, want %v", tt.next, got, tt.wantExpires)
		}
		if got := r.RefreshAt(); !got.Equal(tt.wantRefresh) {
			t.Errorf("next %v: RefreshAt = %v, want %v", tt.next, got, tt.wantRefresh)
		}
	}
}

func TestCertIDKey(t *testing.T) {
	ca := newTestCA(t, "CA")
	other := newTestCA(t, "CA") // same name, other key
	a, _ := ca.issue(t, 5)
	b, _ := other.issue(t, 5)
	if IDOf(a, ca.cert) == IDOf(b, other.cert) {
		t.Error("same serial under two issuers gave one CertID")
	}
	if id1, id2 := IDOf(a, ca.cert), IDOf(a, ca.cert); id1 != id2 {
		t.Error("CertID not stable")
	}
}
