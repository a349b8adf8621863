package clientauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

func TestCRLFile(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.Revoke(bad.CertFile, "keyCompromise")
	for _, file := range []string{ca.CRLFile, ca.CRLDERFile} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}}, Options{})
			accept(t, chk, good)
			r := refused(t, chk, bad, ReasonRevoked)
			if r.Serial != bad.Cert.SerialNumber.Text(16) || r.Subject != "CN=bad" || r.Depth != 0 {
				t.Errorf("refusal names %q serial %s depth %d, want CN=bad serial %x depth 0", r.Subject, r.Serial, r.Depth, bad.Cert.SerialNumber)
			}
			if !strings.Contains(r.Detail, file) || !strings.Contains(r.Detail, "reason 1 (keyCompromise)") {
				t.Errorf("detail %q, want the file and reason 1 (keyCompromise)", r.Detail)
			}
		})
	}
}

// TestCRLFileReread revokes a certificate after the Checker read the CRL
// file: the new CRL is used once the file is looked at again, and a file
// replaced by garbage keeps the CRL read before.
func TestCRLFileReread(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	later := client(ca, "later")
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{ca.CRLFile}}, Options{})
	accept(t, chk, later)

	ca.Revoke(later.CertFile, "")
	accept(t, chk, later) // not looked at yet: FileCheckInterval has not passed
	chk.files.reload()
	refused(t, chk, later, ReasonRevoked)

	if err := os.WriteFile(ca.CRLFile, []byte("not a CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	chk.files.reload()
	refused(t, chk, later, ReasonRevoked)
}

// TestCRLFileLookedAtInBackground: the files are looked at in the
// background once per FileCheckInterval, handshakes or not, so a CRL
// written meanwhile applies from the first handshake after the next look
// (it applied from the second: the first only started the look).
func TestCRLFileLookedAtInBackground(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{ca.CRLDERFile}},
		Options{FileCheckInterval: 10 * time.Millisecond})
	accept(t, chk, c)
	ca.Revoke(c.CertFile, "")
	time.Sleep(time.Second) // many intervals, no handshake
	refused(t, chk, c, ReasonRevoked)
	if err := chk.Close(); err != nil { // stops the loop
		t.Fatal(err)
	}
}

func TestCRLFileUnusable(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "other CA"})
	c := client(ca, "c")
	key := caKey(t, ca)
	dir := t.TempDir()
	tests := []struct {
		name string
		crl  []byte
		want string // in the refusal's error
	}{
		{"stale", makeCRL(t, ca.Cert, key, -2*time.Hour, -time.Hour, nil), "stale"},
		{"from the future", makeCRL(t, ca.Cert, key, time.Hour, 2*time.Hour, nil), "in the future"},
		{"other issuer", readFile(t, other.CRLDERFile), errNoSource.Error()},
		{"badly signed", makeCRL(t, ca.Cert, caKey(t, other), -time.Hour, time.Hour, nil), "signature"},
		{"only CA certificates", makeCRL(t, ca.Cert, key, -time.Hour, time.Hour, idp(t, "", 2)), errNoSource.Error()},
		{"other distribution point", makeCRL(t, ca.Cert, key, -time.Hour, time.Hour, idp(t, "http://elsewhere.example/x.crl", 0)), errNoSource.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".crl")
			if err := os.WriteFile(file, tt.crl, 0o600); err != nil {
				t.Fatal(err)
			}
			p := Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}}
			var logged bytes.Buffer
			r := refused(t, newChecker(t, p, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}), c, ReasonUnknown)
			unusable := tt.name == "stale" || tt.name == "from the future" || tt.name == "badly signed"
			if got := strings.Contains(logged.String(), "crl file cannot answer"); got != unusable {
				t.Errorf("warned at start that the CRL cannot answer: %v, want %v:\n%s", got, unusable, &logged)
			}
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.want) {
				t.Errorf("refusal %v, want an error saying %q", r, tt.want)
			}
			p.Unknown = UnknownAllow
			accept(t, newChecker(t, p, Options{}), c)
		})
	}
}

// TestCRLScopeDistributionPoint: a CRL whose issuing distribution point
// is the one the certificate names covers it.
func TestCRLScopeDistributionPoint(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	file := filepath.Join(t.TempDir(), "dp.crl")
	der := makeCRL(t, ca.Cert, caKey(t, ca), -time.Hour, time.Hour, idp(t, ca.CRLURL, 1), c.Cert.SerialNumber)
	if err := os.WriteFile(file, der, 0o600); err != nil {
		t.Fatal(err)
	}
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}}, Options{})
	refused(t, chk, c, ReasonRevoked)
}

func TestNewRefusesBrokenCRLFile(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	file := filepath.Join(t.TempDir(), "bad.crl")
	if err := os.WriteFile(file, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{file, filepath.Join(t.TempDir(), "missing.crl")} {
		_, err := New(Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{f}}, Options{})
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("New with %s: %v, want an error naming the file", f, err)
		}
	}
}

func TestCRLFetch(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.Revoke(bad.CertFile, "superseded")
	store := newStore(t)
	p := Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFetch: true}
	chk := newChecker(t, p, Options{Storage: store})
	accept(t, chk, good)
	r := refused(t, chk, bad, ReasonRevoked)
	if !strings.Contains(r.Detail, ca.CRLURL) {
		t.Errorf("detail %q, want the distribution point %s", r.Detail, ca.CRLURL)
	}
	if _, err := store.Load(context.Background(), crlKey(ca.CRLURL)); err != nil {
		t.Fatalf("fetched CRL not stored: %v", err)
	}

	// A restart while the network is down: the stored CRL answers.
	down := &http.Client{Transport: failingTransport{}}
	restarted := newChecker(t, p, Options{Storage: store, HTTPClient: down})
	accept(t, restarted, good)
	refused(t, restarted, bad, ReasonRevoked)

	// Without the stored CRL, nothing answers.
	r = refused(t, newChecker(t, p, Options{HTTPClient: down}), good, ReasonUnknown)
	if !errors.Is(r, errInjected) {
		t.Errorf("refusal %v, want the network's error", r)
	}
}

// TestCRLFetchRefresh: a fetched CRL past its refresh time answers while
// a newer one is fetched in the background.
func TestCRLFetchRefresh(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFetch: true}, Options{})
	accept(t, chk, c)
	ca.Revoke(c.CertFile, "")
	accept(t, chk, c) // the CRL fetched first is fresh

	chk.fetched.mu.Lock()
	chk.fetched.byURL[ca.CRLURL].refreshAt = time.Now().Add(-time.Second)
	chk.fetched.mu.Unlock()
	accept(t, chk, c) // answers from the old CRL and starts the refresh
	chk.wg.Wait()     // for the refresh
	refused(t, chk, c, ReasonRevoked)
}

func TestCRLFetchTooLarge(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFetch: true}, Options{MaxCRLSize: 64})
	r := refused(t, chk, c, ReasonUnknown)
	if !strings.Contains(r.Error(), "more than 64") {
		t.Errorf("refusal %v, want the size limit", r)
	}
}

func TestHTTPDistributionPoints(t *testing.T) {
	cert := &x509.Certificate{CRLDistributionPoints: []string{
		"ldap://ldap.example/cn=crl", "https://ca.example/a.crl", "http://ca.example/b.crl", "HTTP://CA.example/c.crl", "http:///nohost",
	}}
	got := httpDistributionPoints(cert)
	want := []string{"http://ca.example/b.crl", "HTTP://CA.example/c.crl"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("httpDistributionPoints = %q, want %q", got, want)
	}
}

func TestCRLRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                string
		this, next, fetched time.Time
		want                time.Time
	}{
		{"half-way within the hour", t0, t0.Add(time.Hour), t0, t0.Add(30 * time.Minute)},
		{"a week-long CRL, an hour after fetching", t0, t0.Add(7 * 24 * time.Hour), t0.Add(time.Minute), t0.Add(61 * time.Minute)},
		{"thisUpdate in the future counts from fetching", t0.Add(time.Minute), t0.Add(40 * time.Minute), t0, t0.Add(20 * time.Minute)},
		{"read back from storage near its end", t0, t0.Add(2 * time.Hour), t0.Add(110 * time.Minute), t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		if got := crlRefreshAt(tt.this, tt.next, tt.fetched); !got.Equal(tt.want) {
			t.Errorf("%s: crlRefreshAt = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// errInjected is the error of failingTransport.
var errInjected = errors.New("injected: network down")

// failingTransport fails every request (fault injection) and counts them.
type failingTransport struct{ n *atomic.Int32 }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	if f.n != nil {
		f.n.Add(1)
	}
	return nil, errInjected
}

// TestFailureBackoff: after a failed fetch, checks get its error at once
// instead of asking the network again on every handshake.
func TestFailureBackoff(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	var requests atomic.Int32
	p := Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFetch: true, OCSP: true}
	chk := newChecker(t, p, Options{HTTPClient: &http.Client{Transport: failingTransport{&requests}}})
	for range 3 {
		r := refused(t, chk, c, ReasonUnknown)
		if !errors.Is(r, errInjected) {
			t.Fatalf("refusal %v, want the network's error", r)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (one CRL, one OCSP)", n)
	}
}

// caKey reads the private key of ca.
func caKey(t testing.TB, ca *testenv.OpenSSLCA) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode(readFile(t, ca.KeyFile))
	if block == nil {
		t.Fatalf("%s: no PEM block", ca.KeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// makeCRL makes a DER CRL of issuer signed with key, valid from now+from
// to now+to, with the extra extension ext (if not nil) and the serials
// revoked.
func makeCRL(t testing.TB, issuer *x509.Certificate, key crypto.Signer, from, to time.Duration, ext *pkix.Extension, serials ...*big.Int) []byte {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(from), NextUpdate: now.Add(to)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	if ext != nil {
		tmpl.ExtraExtensions = []pkix.Extension{*ext}
	}
	// CreateRevocationList checks the key against issuer's; a CRL signed
	// by another key must claim the issuer's name with a forged parent.
	parent := *issuer
	parent.PublicKey = key.Public()
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, &parent, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// idp returns an issuing distribution point extension naming uri (if
// not empty) and setting the boolean field [flag] (1 onlyContainsUserCerts,
// 2 onlyContainsCACerts, …; 0 none).
func idp(t testing.TB, uri string, flag int) *pkix.Extension {
	t.Helper()
	var body []byte
	if uri != "" {
		gn := mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)})
		full := mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: gn})
		body = append(body, mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: full})...)
	}
	if flag > 0 {
		body = append(body, mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: flag, Bytes: []byte{0xff}})...)
	}
	value := mustMarshal(t, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	return &pkix.Extension{Id: oidIssuingDP, Critical: true, Value: value}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCRLFileChain: in chain mode the intermediate is checked against the
// root's CRL, and needs an answer too.
func TestCRLFileChain(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	c := client(inter, "c")
	p := Policy{CAs: []*x509.Certificate{root.Cert}, Revocation: RevocationChain, CRLFiles: []string{root.CRLFile, inter.CRLFile}}
	accept(t, newChecker(t, p, Options{}), c)

	root.Revoke(inter.CertFile, "cACompromise")
	r := refused(t, newChecker(t, p, Options{}), c, ReasonRevoked)
	if r.Depth != 1 || r.Subject != "CN="+inter.Name || r.Serial != inter.Cert.SerialNumber.Text(16) {
		t.Errorf("refusal %v, want the intermediate at depth 1", r)
	}
	leaf := p
	leaf.Revocation = RevocationLeaf
	accept(t, newChecker(t, leaf, Options{}), c)

	p.CRLFiles = []string{inter.CRLFile} // nothing answers for the intermediate
	if r := refused(t, newChecker(t, p, Options{}), c, ReasonUnknown); r.Depth != 1 {
		t.Errorf("refusal %v, want the intermediate at depth 1", r)
	}
}

// TestCRLFileWarnedBounded: a stale CRL re-published again and again is
// warned about once per copy read, and only the current copy is
// remembered; every copy was kept for ever (500 MB for a 5 MB CRL
// touched every few seconds).
func TestCRLFileWarnedBounded(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	key := caKey(t, ca)
	file := filepath.Join(t.TempDir(), "stale.crl")
	write := func(i int) {
		t.Helper()
		if err := os.WriteFile(file, makeCRL(t, ca.Cert, key, -2*time.Hour, -time.Hour, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Duration(i) * time.Minute) // a change, whatever the file system's clock
		if err := os.Chtimes(file, at, at); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	var logged bytes.Buffer
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}},
		Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	const rewrites = 5
	for i := 1; i <= rewrites; i++ {
		write(i)
		chk.files.reload()
		chk.files.warnUnusable(time.Now())
		chk.files.warnUnusable(time.Now()) // the same copy: not again
	}
	if n := len(chk.files.warned); n != 1 {
		t.Errorf("%d CRLs remembered as warned about, want 1 (the current one)", n)
	}
	if n := strings.Count(logged.String(), "crl file cannot answer"); n != rewrites+1 {
		t.Errorf("%d warnings, want %d (one per copy read):\n%s", n, rewrites+1, &logged)
	}
}

// TestCRLFileBadSignatureWarned: a CRL file signed by another key than
// its issuer's in the CAs (same issuer name) is warned about when read,
// at start and when read again, naming the file; it was taken with only
// "crl file read again" at INFO, and every client was then refused one
// handshake at a time.
func TestCRLFileBadSignatureWarned(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	file := filepath.Join(t.TempDir(), "ca.crl")
	if err := os.WriteFile(file, readFile(t, ca.CRLFile), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	p := Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}}
	chk := newChecker(t, p, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	accept(t, chk, c)
	if strings.Contains(logged.String(), "WARN") {
		t.Fatalf("warned about a good CRL:\n%s", &logged)
	}

	forged := readFile(t, other.CRLFile) // the same issuer name, another key
	if err := os.WriteFile(file, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	chk.files.reload()
	chk.files.warnUnusable(time.Now())
	warned := func(log string) bool {
		return strings.Contains(log, "level=WARN") && strings.Contains(log, "file="+file) && strings.Contains(log, "signature")
	}
	if !warned(logged.String()) {
		t.Errorf("no warning naming %s and the signature after it was read again:\n%s", file, &logged)
	}
	refused(t, chk, c, ReasonUnknown)

	logged.Reset()
	if _, err := New(p, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}); err != nil {
		t.Fatal(err)
	}
	if !warned(logged.String()) {
		t.Errorf("no warning naming %s and the signature at start:\n%s", file, &logged)
	}
}

// TestHTTPSOnlyDistributionPoint: a certificate whose only CRL
// distribution point is https:// (not fetched, by design) is refused
// with an error naming that distribution point, not only "no CRL covers
// the issuer".
func TestHTTPSOnlyDistributionPoint(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	const dp = "https://ca.example/only.crl"
	leaf := issueWith(t, ca, &x509.Certificate{CRLDistributionPoints: []string{dp}})
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, CRLFetch: true}, Options{})
	r := wantRefusal(t, chk.Check(context.Background(), []*x509.Certificate{leaf, ca.Cert}), ReasonUnknown)
	if !errors.Is(r, errNoSource) || !strings.Contains(r.Error(), dp) || !strings.Contains(r.Error(), "only http://") {
		t.Errorf("refusal %v, want no source, naming %s as not fetched", r, dp)
	}
}

// issueWith has ca sign a client certificate made from tmpl (its serial,
// names, dates, key and usages filled in), for extensions the OpenSSL
// test CA does not write.
func issueWith(t *testing.T, ca *testenv.OpenSSLCA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{CommonName: "made"}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, caKey(t, ca))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckCRLFile: the configuration check reads a CRL file as New
// does, and says which CRLs of it cannot answer.
func TestCheckCRLFile(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	cas := []*x509.Certificate{ca.Cert}
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.crl")
	if err := os.WriteFile(stale, makeCRL(t, ca.Cert, caKey(t, ca), -2*time.Hour, -time.Hour, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.crl")
	if err := os.WriteFile(cut, readFile(t, ca.CRLFile)[:200], 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, unusable, err string
	}{
		{ca.CRLFile, "", ""},
		{ca.CRLDERFile, "", ""},
		{other.CRLFile, "signature", ""},
		{stale, "stale", ""},
		{cut, "", cut},
	}
	for _, tt := range tests {
		unusable, err := CheckCRLFile(tt.file, cas, time.Now())
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want an error naming the file", tt.file, err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.file, err)
		case tt.unusable == "" && len(unusable) > 0, tt.unusable != "" && (len(unusable) != 1 || !strings.Contains(unusable[0].Error(), tt.unusable)):
			t.Errorf("%s: unusable %v, want %q", tt.file, unusable, tt.unusable)
		}
	}
}

// TestCRLOtherKeyIDSameKey: crypto/x509 verifies a chain through a root
// re-issued with the same key under another subject key identifier (the
// first root not in ca, the intermediate sent by the client). The CRL
// of that key names the first identifier; its signature verifies with
// the re-issued root's key, so it answers: the intermediate is refused
// as revoked. A CRL of the same name signed by another key still does
// not answer.
func TestCRLOtherKeyIDSameKey(t *testing.T) {
	rk := rvKey(t)
	now := time.Now()
	first := rvRootAt(t, "Root", rk, []byte("first-key-id"), now.Add(-time.Hour), now.AddDate(1, 0, 0))
	again := rvRootAt(t, "Root", rk, []byte("other-key-id"), now.Add(-time.Hour), now.AddDate(1, 0, 0))
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), first, nil), key: ik}
	leaf := rvClient(t, inter, "judy")
	chain := shortestChain(t, leaf, []*x509.Certificate{inter.cert}, again.cert)
	if len(chain) != 3 || chain[2] != again.cert {
		t.Fatalf("verified chain of %d, want leaf, Inter, the re-issued root (the case under test)", len(chain))
	}
	p := Policy{CAs: []*x509.Certificate{again.cert}, VerifyDepth: 2, Revocation: RevocationChain,
		CRLFiles: []string{rvCRLFileOf(t, first, inter.cert.SerialNumber), rvCRLFileOf(t, inter)}}
	wantRefusal(t, newChecker(t, p, Options{}).Check(context.Background(), chain), ReasonRevoked)

	impostor := rvRootAt(t, "Root", rvKey(t), []byte("first-key-id"), now.Add(-time.Hour), now.AddDate(1, 0, 0))
	l, err := parseCRL(makeCRL(t, impostor.cert, impostor.key, -time.Minute, time.Hour, nil), "impostor")
	if err != nil {
		t.Fatal(err)
	}
	if l.covers(inter.cert, again.cert) {
		t.Error("a CRL of another key and identifier covers the re-issued root's intermediate")
	}
}
