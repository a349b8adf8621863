package fleetca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// newOptions returns Options over a new file storage in a temporary
// directory, with its own KEK.
func newOptions(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "storage")})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	return Options{Storage: st, Sealer: sealer}
}

// TestCreateOnce: Create makes the CA once and keeps it after; its
// record holds the key sealed (no clear key, no opening under another
// KEK), and the certificate has the parameters of RFC 5280 for a CA
// that signs end-entity certificates only.
func TestCreateOnce(t *testing.T) {
	ctx := context.Background()
	opts := newOptions(t)
	if _, err := Open(ctx, opts); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "tlspilot init") {
		t.Fatalf("Open before Create: %v, want fs.ErrNotExist saying to run tlspilot init", err)
	}
	ca, created, err := Create(ctx, opts)
	if err != nil || !created {
		t.Fatalf("Create: created %v, %v", created, err)
	}
	again, created, err := Create(ctx, opts)
	if err != nil || created || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("second Create: created %v, same %v, %v", created, again != nil && again.Certificate().Equal(ca.Certificate()), err)
	}
	raw, err := opts.Storage.Load(ctx, recordKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) || !bytes.Contains(raw, []byte("TLSPILOT ENCRYPTED KEY")) {
		t.Errorf("the CA record does not hold its key sealed only:\n%s", raw)
	}
	other := newOptions(t)
	other.Storage = opts.Storage
	if _, err := Open(ctx, other); err == nil || !strings.Contains(err.Error(), "wrong KEK") {
		t.Errorf("Open under another KEK: %v, want a wrong KEK error", err)
	}
	checkCACert(t, ca.Certificate())
}

// checkCACert checks the profile of a fleet CA certificate.
func checkCACert(t *testing.T, c *x509.Certificate) {
	t.Helper()
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok || pub.Curve != elliptic.P256():
		t.Errorf("CA key %T, want ECDSA P-256", c.PublicKey)
	case !c.BasicConstraintsValid || !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero:
		t.Errorf("basic constraints: valid %v CA %v pathlen %d zero %v, want a CA with path length 0",
			c.BasicConstraintsValid, c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	case c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign:
		t.Errorf("key usage %b, want keyCertSign and cRLSign only", c.KeyUsage)
	case c.SignatureAlgorithm != x509.ECDSAWithSHA256:
		t.Errorf("signature %v, want ECDSA with SHA-256", c.SignatureAlgorithm)
	case len(c.SubjectKeyId) == 0:
		t.Error("no subject key identifier")
	case c.Subject.CommonName != CommonName:
		t.Errorf("subject %s", c.Subject)
	case c.NotAfter.Sub(c.NotBefore) < CALifetime:
		t.Errorf("valid %v to %v, want %v", c.NotBefore, c.NotAfter, CALifetime)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

// TestCreateConcurrent: processes (here goroutines, each with its own
// Store over the same directory) running init at once make one CA.
func TestCreateConcurrent(t *testing.T) {
	opts := newOptions(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var made int
	var certs []*x509.Certificate
	for range 4 {
		wg.Go(func() {
			ca, created, err := Create(context.Background(), opts)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			certs = append(certs, ca.Certificate())
			if created {
				made++
			}
		})
	}
	wg.Wait()
	if made != 1 {
		t.Errorf("%d CAs made, want 1", made)
	}
	for _, c := range certs[1:] {
		if !c.Equal(certs[0]) {
			t.Error("Create returned different CAs")
		}
	}
}

// newCA creates a CA in a new storage.
func newCA(t *testing.T) *CA {
	t.Helper()
	ca, _, err := Create(context.Background(), newOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// newCSR returns a key and a CSR made with it, for names the issuer must
// ignore.
func newCSR(t *testing.T, key crypto.Signer) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "admin.example.com"},
		DNSNames: []string{"admin.example.com", "*.example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// TestIssueClient: a client certificate names the agent and nothing the
// CSR asked for, lasts the lifetime asked (7 days by default), chains to
// the CA for client authentication and not for server authentication.
func TestIssueClient(t *testing.T) {
	ca := newCA(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := ca.IssueClient(newCSR(t, key), "db1.example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "db1.example.com" || len(c.DNSNames) != 1 || c.DNSNames[0] != "db1.example.com" {
		t.Errorf("subject %s, DNS names %v: want the agent's host only", c.Subject, c.DNSNames)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != ClientLifetime+backdate {
		t.Errorf("lifetime %v, want %v (plus %v backdated)", got, ClientLifetime, backdate)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA {
		t.Errorf("usages %v %b CA %v, want client auth and digital signature only", c.ExtKeyUsage, c.KeyUsage, c.IsCA)
	}
	if !bytes.Equal(c.AuthorityKeyId, ca.Certificate().SubjectKeyId) || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("authority key id %x (CA %x), signature %v", c.AuthorityKeyId, ca.Certificate().SubjectKeyId, c.SignatureAlgorithm)
	}
	verify := func(u x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{u}})
		return err
	}
	if err := verify(x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate does not verify for client auth: %v", err)
	}
	if err := verify(x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("client certificate verifies for server auth")
	}
	day, err := ca.IssueClient(newCSR(t, key), "db1", 24*time.Hour)
	if err != nil || day.NotAfter.Sub(day.NotBefore) != 24*time.Hour+backdate {
		t.Errorf("a one-day certificate: %v", err)
	}
}

// TestIssueClientRefused: a weak key, a CSR whose signature does not
// match and a host that is not a host name are refused.
func TestIssueClientRefused(t *testing.T) {
	ca := newCA(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueClient(newCSR(t, weak), "db1", 0); !errors.Is(err, ErrWeakKey) {
		t.Errorf("RSA 1024: %v, want ErrWeakKey", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := newCSR(t, key)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged.PublicKey = other.Public()
	if _, err := ca.IssueClient(forged, "db1", 0); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("CSR signed by another key: %v", err)
	}
	if _, err := ca.IssueClient(newCSR(t, key), "../db1", 0); err == nil {
		t.Error("host ../db1 accepted")
	}
}

// TestIssueServer: the server certificate holds the issuer's DNS names
// and IP addresses and verifies for server authentication only.
func TestIssueServer(t *testing.T) {
	ca := newCA(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := ca.IssueServer(key.Public(), []string{"issuer.example.com", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DNSNames) != 1 || len(c.IPAddresses) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || len(c.ExtKeyUsage) != 1 {
		t.Errorf("names %v %v usages %v", c.DNSNames, c.IPAddresses, c.ExtKeyUsage)
	}
	for _, name := range []string{"issuer.example.com", "127.0.0.1"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("server certificate verifies for client auth")
	}
	if _, err := ca.IssueServer(key.Public(), nil); err == nil {
		t.Error("a server certificate without names")
	}
}

// TestCheckHost: agent host names.
func TestCheckHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"db1", true},
		{"db1.example.com", true},
		{"a-b.c0", true},
		{"", false},
		{"DB1", false},
		{"db1.", false},
		{".db1", false},
		{"-db1", false},
		{"db1-", false},
		{"db_1", false},
		{"../x", false},
		{"*.example.com", false},
		{"db1/x", false},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("a.", 127) + "a", false},
	} {
		if err := CheckHost(tc.host); (err == nil) != tc.ok {
			t.Errorf("CheckHost(%q) = %v, want ok %v", tc.host, err, tc.ok)
		}
	}
}
