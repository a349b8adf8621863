package clientauth

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// newChecker builds a Checker logging to the test, closed in t.Cleanup.
// A zero VerifyDepth in p is raised to 2 (root, intermediate, leaf).
func newChecker(t *testing.T, p Policy, opts Options) *Checker {
	t.Helper()
	if p.VerifyDepth == 0 {
		p.VerifyDepth = 2
	}
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	c, err := New(p, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a file store in a temporary directory.
func newStore(t *testing.T) storage.Storage {
	t.Helper()
	s, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rootOf returns the root CA above ca.
func rootOf(ca *testenv.OpenSSLCA) *testenv.OpenSSLCA {
	for ca.Parent != nil {
		ca = ca.Parent
	}
	return ca
}

// verified returns the chain crypto/x509 verifies for c against its
// root, as the TLS stack hands it to VerifyConnection: c first, the root
// last.
func verified(t testing.TB, c *testenv.IssuedCert) []*x509.Certificate {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(rootOf(c.Issuer).Cert)
	for ca := c.Issuer; ca.Parent != nil; ca = ca.Parent {
		inters.AddCert(ca.Cert)
	}
	chains, err := c.Cert.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("verify %s: %v", c.Cert.Subject, err)
	}
	return chains[0]
}

// client issues a client certificate from ca.
func client(ca *testenv.OpenSSLCA, name string) *testenv.IssuedCert {
	return ca.Issue(testenv.IssueOptions{CommonName: name, Client: true})
}

// accept fails the test unless Check accepts c.
func accept(t *testing.T, chk *Checker, c *testenv.IssuedCert) {
	t.Helper()
	if err := chk.Check(context.Background(), verified(t, c)); err != nil {
		t.Fatalf("Check %s: %v, want accepted", c.Cert.Subject.CommonName, err)
	}
}

// refused fails the test unless Check refuses c for reason, and returns
// the refusal.
func refused(t *testing.T, chk *Checker, c *testenv.IssuedCert, reason Reason) *Refusal {
	t.Helper()
	return wantRefusal(t, chk.Check(context.Background(), verified(t, c)), reason)
}

// wantRefusal fails the test unless err is a *Refusal for reason.
func wantRefusal(t *testing.T, err error, reason Reason) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %v, want a refusal (%s)", err, reason)
	}
	if r.Reason != reason {
		t.Fatalf("refusal %v, want reason %s", r, reason)
	}
	return r
}
