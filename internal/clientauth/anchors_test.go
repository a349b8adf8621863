package clientauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// shortestChain verifies leaf as the server does (internal/server
// verifyChain): against a pool of cas, with the intermediates the client
// sends, taking the shortest chain. A certificate of cas given as the
// client's own is a chain of one.
func shortestChain(t *testing.T, leaf *x509.Certificate, sent []*x509.Certificate, cas ...*x509.Certificate) []*x509.Certificate {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range sent {
		inters.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("verify %s: %v", leaf.Subject, err)
	}
	return slices.MinFunc(chains, func(a, b []*x509.Certificate) int { return len(a) - len(b) })
}

// TestChainOfOneIsChecked: a client whose certificate is itself in the
// CAs (here an intermediate CA's, presented with its key) is a chain of
// one to crypto/x509. It was let in without any revocation check; it is
// now checked against its issuer from the CAs, or against itself when
// self-signed, and refused when revoked or when nothing answers.
func TestChainOfOneIsChecked(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	cas := []*x509.Certificate{root.Cert, inter.Cert}
	p := Policy{CAs: cas, VerifyDepth: 1, Revocation: RevocationLeaf, CRLFiles: []string{root.CRLFile}}

	chain := shortestChain(t, inter.Cert, nil, cas...)
	if len(chain) != 1 {
		t.Fatalf("verified chain of %d certificates, want 1 (the case under test)", len(chain))
	}
	if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
		t.Fatalf("Check before revocation: %v", err)
	}
	root.Revoke(inter.CertFile, "cACompromise")
	chk := newChecker(t, p, Options{})
	r := wantRefusal(t, chk.Check(context.Background(), chain), ReasonRevoked)
	if r.Depth != 0 || r.Subject != "CN="+inter.Name || !strings.Contains(r.Detail, root.CRLFile) {
		t.Errorf("refusal %v, want the certificate at depth 0, by %s", r, root.CRLFile)
	}

	// The same through a real handshake.
	srv := root.Issue(testenv.IssueOptions{CommonName: "localhost", IPAddresses: []string{"127.0.0.1"}})
	asClient := &testenv.IssuedCert{CertFile: inter.CertFile, KeyFile: inter.KeyFile, Cert: inter.Cert, Issuer: root}
	wantRefusal(t, handshake(t, chk, srv, asClient), ReasonRevoked)

	// A self-signed certificate alone is checked against itself: with no
	// CRL of its own at hand, nothing answers.
	self := Policy{CAs: cas, VerifyDepth: 1, Revocation: RevocationLeaf, CRLFiles: []string{inter.CRLFile}}
	r = wantRefusal(t, newChecker(t, self, Options{}).Check(context.Background(), []*x509.Certificate{root.Cert}), ReasonUnknown)
	if r.Subject != "CN="+root.Name {
		t.Errorf("refusal %v, want the root's", r)
	}
	self.CRLFiles = []string{root.CRLFile}
	if err := newChecker(t, self, Options{}).Check(context.Background(), []*x509.Certificate{root.Cert}); err != nil {
		t.Errorf("Check of the root alone with its own CRL: %v, want accepted", err)
	}
}

// TestChainIntermediateInCAFile: with the intermediate in the ca file
// (intermediate + root, the usual bundle), crypto/x509 ends the chain at
// the intermediate; chain mode still checks it against the root's CRL,
// and OCSP, as `openssl verify -crl_check_all` does.
func TestChainIntermediateInCAFile(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	c := client(inter, "carol")
	cas := []*x509.Certificate{inter.Cert, root.Cert}
	for _, sent := range [][]*x509.Certificate{nil, {inter.Cert}} { // carol, carol + intermediate
		chain := shortestChain(t, c.Cert, sent, cas...)
		if len(chain) != 2 {
			t.Fatalf("verified chain of %d certificates, want 2 (the case under test)", len(chain))
		}
	}
	chain := shortestChain(t, c.Cert, nil, cas...)
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: []string{inter.CRLFile, root.CRLFile}}
	if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
		t.Fatalf("Check before revocation: %v", err)
	}

	root.Revoke(inter.CertFile, "cACompromise")
	r := wantRefusal(t, newChecker(t, p, Options{}).Check(context.Background(), chain), ReasonRevoked)
	if r.Depth != 1 || r.Subject != "CN="+inter.Name || !strings.Contains(r.Detail, root.CRLFile) {
		t.Errorf("refusal %v, want the intermediate at depth 1, by %s", r, root.CRLFile)
	}
	leaf := p
	leaf.Revocation = RevocationLeaf
	if err := newChecker(t, leaf, Options{}).Check(context.Background(), chain); err != nil {
		t.Errorf("leaf mode: %v, want accepted (the intermediate is not checked)", err)
	}

	root.StartOCSP(testenv.OCSPResponderOptions{})
	inter.StartOCSP(testenv.OCSPResponderOptions{})
	ocsp := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, OCSP: true}
	r = wantRefusal(t, newChecker(t, ocsp, Options{}).Check(context.Background(), chain), ReasonRevoked)
	if r.Depth != 1 || !strings.Contains(r.Detail, root.OCSPURL) {
		t.Errorf("refusal %v, want the intermediate at depth 1, by %s", r, root.OCSPURL)
	}
}

// TestChainModeNeedsRoot: in chain mode a CA of the ca file whose issuer
// is not there could never be checked; New says so instead of refusing
// every client at the handshake. Leaf mode does not need it.
func TestChainModeNeedsRoot(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	p := Policy{CAs: []*x509.Certificate{inter.Cert}, VerifyDepth: 1, Revocation: RevocationChain, CRLFiles: []string{inter.CRLFile}}
	_, err := New(p, Options{})
	if err == nil || !strings.Contains(err.Error(), "CN="+inter.Name) || !strings.Contains(err.Error(), "not in ca") {
		t.Errorf("New in chain mode without the root: %v, want an error naming the intermediate", err)
	}
	p.Revocation = RevocationLeaf
	c := client(inter, "c")
	if err := newChecker(t, p, Options{}).Check(context.Background(), shortestChain(t, c.Cert, nil, inter.Cert)); err != nil {
		t.Errorf("leaf mode: %v, want accepted", err)
	}
}

// TestReadCAFileRefusesLeaf: a client certificate in the ca file is
// refused, naming the file and the certificate; CA certificates pass.
func TestReadCAFileRefusesLeaf(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	bob := client(root, "bob")
	dir := t.TempDir()
	good := writeJoined(t, filepath.Join(dir, "chain.pem"), inter.CertFile, root.CertFile)
	cas, err := ReadCAFile(good)
	if err != nil || len(cas) != 2 {
		t.Fatalf("ReadCAFile(intermediate + root) = %d certificates, %v; want 2", len(cas), err)
	}
	for _, files := range [][]string{{root.CertFile, bob.CertFile}, {bob.CertFile}} {
		f := writeJoined(t, filepath.Join(dir, "with-bob.pem"), files...)
		_, err := ReadCAFile(f)
		if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), `"CN=bob"`) || !strings.Contains(err.Error(), "not a CA") {
			t.Errorf("ReadCAFile(%d files with bob's) = %v, want an error naming the file and CN=bob", len(files), err)
		}
	}
	if _, err := New(Policy{CAs: []*x509.Certificate{bob.Cert}}, Options{}); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("New with a client certificate as CA: %v, want refused", err)
	}
}

// TestReadCAFileTrustedCertificate: a CA written by `openssl x509
// -addtrust` ("TRUSTED CERTIFICATE", with OpenSSL's trust settings) is
// refused with an error naming the file and saying how to convert it;
// it was skipped silently, so the CA was not trusted and its clients
// were refused with nothing saying why.
func TestReadCAFileTrustedCertificate(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	dir := t.TempDir()
	trusted := openssl(t, "x509", "-in", inter.CertFile, "-addtrust", "clientAuth")
	if !strings.Contains(string(trusted), "BEGIN TRUSTED CERTIFICATE") {
		t.Fatalf("openssl x509 -addtrust wrote no TRUSTED CERTIFICATE:\n%s", trusted)
	}
	f := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(f, append(readFile(t, root.CertFile), trusted...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadCAFile(f)
	if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "TRUSTED CERTIFICATE") || !strings.Contains(err.Error(), "openssl x509") {
		t.Errorf("ReadCAFile(root + TRUSTED CERTIFICATE) = %v, want an error naming the file and the block", err)
	}
}

// writeJoined writes the files' contents one after the other to name
// and returns name.
func writeJoined(t *testing.T, name string, files ...string) string {
	t.Helper()
	var all []byte
	for _, f := range files {
		all = append(all, readFile(t, f)...)
	}
	if err := os.WriteFile(name, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestReadCAFileOldRoot: a self-signed root without basic constraints (a
// version 1 certificate, as old private CAs made them) stays a CA that
// ca may list, as OpenSSL and nginx take it; a certificate without basic
// constraints that another issued is refused.
func TestReadCAFileOldRoot(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "not a ca"},
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter}
	lder, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, ders ...[]byte) string {
		var b []byte
		for _, d := range ders {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if cas, err := ReadCAFile(write("root.pem", der)); err != nil || len(cas) != 1 {
		t.Errorf("ReadCAFile(self-signed root without basic constraints) = %d, %v; want it", len(cas), err)
	}
	if _, err := ReadCAFile(write("both.pem", der, lder)); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("ReadCAFile(with an issued certificate without basic constraints) = %v, want refused", err)
	}
}

// TestUnrootedSaysWhy: in chain mode New names the CA from which no
// self-signed root can be reached, and why: its issuer is missing, a
// certificate of its issuer's name is there but its signature did not
// verify (it said only "not in ca"), that certificate may not issue, or its
// issuers go round in a loop (it was let through: each had "an issuer").
func TestUnrootedSaysWhy(t *testing.T) {
	root, impostor := rvRoot(t, "Root"), rvRoot(t, "Root") // same name, other key
	ik := rvKey(t)
	inter := rvSign(t, rvCATmpl("Inter"), ik.Public(), root, nil)
	pk := rvKey(t)
	pinned := rvSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Root"}, BasicConstraintsValid: true}, pk.Public(), nil, pk)
	a, b := rvRoot(t, "A"), rvRoot(t, "B")
	aByB := rvSign(t, rvCATmpl("A"), a.key.Public(), b, nil)
	bByA := rvSign(t, rvCATmpl("B"), b.key.Public(), a, nil)
	noSign := rvCATmpl("Root")
	noSign.KeyUsage = x509.KeyUsageCRLSign
	noSignRoot := rvSign(t, noSign, root.key.Public(), nil, root.key)
	for _, tt := range []struct {
		name string
		cas  []*x509.Certificate
		want string // "": accepted
	}{
		{"issuer missing", []*x509.Certificate{inter}, `the issuer of CA "CN=Inter" is not in ca`},
		{"signature does not verify", []*x509.Certificate{inter, impostor.cert}, `the signature of CA "CN=Inter" does not verify with the key of "CN=Root"`},
		{"issuer not a CA", []*x509.Certificate{inter, pinned}, `is not a CA certificate`},
		{"issuer may not sign certificates", []*x509.Certificate{inter, noSignRoot}, `does not allow signing certificates`},
		{"loop", []*x509.Certificate{aByB, bByA}, `no self-signed root of ca can be reached from CA "CN=A"`},
		{"right issuer among others", []*x509.Certificate{inter, impostor.cert, pinned, root.cert}, ""},
		{"loop with a root", []*x509.Certificate{aByB, bByA, b.cert}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCAs(tt.cas, RevocationChain)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ValidateCAs: %v, want accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ValidateCAs: %v, want it to say %q", err, tt.want)
			}
			if err := ValidateCAs(tt.cas, RevocationLeaf); err != nil {
				t.Errorf("ValidateCAs in leaf mode: %v, want accepted", err)
			}
		})
	}
}

// TestExtendTwin: a chain that crypto/x509 ends at a cross-certificate
// whose issuer is not in ca (a root's subject and key, signed by another
// root) is continued from the root itself, which issued the same; a
// client certificate alone is never replaced.
func TestExtendTwin(t *testing.T) {
	r1, r2 := rvRoot(t, "Root One"), rvRoot(t, "Root Two")
	cross := rvSign(t, rvCATmpl("Root One"), r1.key.Public(), r2, nil)
	leaf := rvClient(t, r1, "frank")
	links := newCALinks([]*x509.Certificate{cross, r1.cert})
	chain := []*x509.Certificate{leaf, cross}
	full, rooted := links.extend(chain, time.Now())
	if !rooted || len(full) != 2 || full[1] != r1.cert || chain[1] != cross {
		t.Errorf("extend(leaf, cross) = %d certificates, rooted %v; want leaf, Root One, rooted, the chain unchanged", len(full), rooted)
	}
	if full, rooted := links.extend([]*x509.Certificate{cross}, time.Now()); rooted || len(full) != 1 || full[0] != cross {
		t.Errorf("extend(cross) = %d certificates, rooted %v; want cross alone, not rooted", len(full), rooted)
	}
}

// rvRootAt makes a self-signed root CA named name with key k, subject
// key identifier ski (nil: Go's), valid from from to to.
func rvRootAt(t *testing.T, name string, k crypto.Signer, ski []byte, from, to time.Time) *rvCA {
	t.Helper()
	tmpl := rvCATmpl(name)
	tmpl.SubjectKeyId = ski
	rvSign(t, tmpl, k.Public(), nil, k) // fills in the serial; signed again below
	tmpl.NotBefore, tmpl.NotAfter = from, to
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &rvCA{cert: c, key: k}
}

// TestExtendPassesOverExpired: a root re-issued with new dates (same
// name, key and key identifier), the old one expired, both in ca, the
// expired one first: chain mode continues the chain with the valid one,
// as OpenSSL does, and accepts; with only the expired one it refuses the
// client as expired at the root's depth. The same for twins.
func TestExtendPassesOverExpired(t *testing.T) {
	now := time.Now()
	rk := rvKey(t)
	old := rvRootAt(t, "Root", rk, nil, now.AddDate(-10, 0, 0), now.AddDate(0, 0, -1))
	renewed := rvRootAt(t, "Root", rk, nil, now.AddDate(0, 0, -2), now.AddDate(10, 0, 0))
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), renewed, nil), key: ik}
	leaf := rvClient(t, inter, "ivan")
	crls := []string{rvCRLFileOf(t, renewed), rvCRLFileOf(t, inter)}
	cas := []*x509.Certificate{inter.cert, old.cert, renewed.cert}
	chain := shortestChain(t, leaf, nil, cas...)
	if full, rooted := newCALinks(cas).extend(chain, now); !rooted || len(full) != 3 || full[2] != renewed.cert {
		t.Errorf("extend: %d certificates, rooted %v; want it to end at the renewed root", len(full), rooted)
	}
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: crls}
	if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
		t.Errorf("Check: %v; want accepted through the renewed root", err)
	}
	p.CAs = []*x509.Certificate{inter.cert, old.cert}
	r := wantRefusal(t, newChecker(t, p, Options{}).Check(context.Background(), chain), ReasonExpired)
	if r.Depth != 2 || r.Serial != serialHex(old.cert.SerialNumber) {
		t.Errorf("refusal %v, want the expired root at depth 2", r)
	}

	// A cross-certificate of Inter whose issuer is not in ca, and two
	// twins: an expired one first.
	other := rvRoot(t, "Other Root")
	cross := rvSign(t, rvCATmpl("Inter"), ik.Public(), other, nil)
	expiredTwin := rvSignAt(t, rvCATmpl("Inter"), ik.Public(), renewed, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -1))
	links := newCALinks([]*x509.Certificate{cross, expiredTwin, inter.cert, renewed.cert})
	if full, rooted := links.extend([]*x509.Certificate{leaf, cross}, now); !rooted || len(full) != 3 || full[1] != inter.cert {
		t.Errorf("extend(leaf, cross): %d certificates, rooted %v; want the valid twin in place of cross", len(full), rooted)
	}
}

// TestLinksKeyIDs: an issuer whose subject key identifier is the CA's
// authority key identifier comes first, whatever the order of ca, and
// one with another identifier is not its issuer even though its key
// signed it (OpenSSL's X509_check_issued): ValidateCAs says so.
func TestLinksKeyIDs(t *testing.T) {
	rk := rvKey(t)
	now := time.Now()
	a := rvRootAt(t, "Root", rk, []byte("key-id-a"), now.Add(-time.Hour), now.AddDate(1, 0, 0))
	b := rvRootAt(t, "Root", rk, []byte("key-id-b"), now.Add(-time.Hour), now.AddDate(1, 0, 0))
	noID := rvRootAt(t, "Root", rk, nil, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	noID.cert.SubjectKeyId = nil // as a certificate without the extension
	ik := rvKey(t)
	inter := rvSign(t, rvCATmpl("Inter"), ik.Public(), a, nil)
	links := newCALinks([]*x509.Certificate{inter, b.cert, noID.cert, a.cert})
	if got := links.byRaw[string(inter.Raw)].issuers; len(got) != 2 || got[0] != a.cert || got[1] != noID.cert {
		t.Errorf("issuers of Inter: %d, want the root of its key identifier, then the one without", len(got))
	}
	err := ValidateCAs([]*x509.Certificate{inter, b.cert}, RevocationChain)
	if err == nil || !strings.Contains(err.Error(), "is not the subject key identifier") || !strings.Contains(err.Error(), "signature verifies") {
		t.Errorf("ValidateCAs(Inter, root of another key identifier): %v; want it to say so", err)
	}
}

// TestLinksOnlyWhenChecked: New builds no links when nothing is checked
// for revocation, and builds them once otherwise.
func TestLinksOnlyWhenChecked(t *testing.T) {
	root := rvRoot(t, "Root")
	p := Policy{CAs: []*x509.Certificate{root.cert}}
	if chk := newChecker(t, p, Options{}); chk.links.byRaw != nil {
		t.Errorf("revocation off: %d links, want none", len(chk.links.byRaw))
	}
	p.Revocation, p.CRLFiles = RevocationLeaf, []string{rvCRLFileOf(t, root)}
	if chk := newChecker(t, p, Options{}); !chk.links.byRaw[string(root.cert.Raw)].root {
		t.Error("leaf mode: the root is not linked")
	}
}
