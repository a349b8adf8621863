package clientauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// rvCA is a CA made in Go, for shapes the OpenSSL test CA cannot make
// (cross-certificates, SHA-1 signatures, self-signed leaves).
type rvCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// rvKey returns a new P-256 key.
func rvKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rvSign has parent (nil: self-signed with key) sign tmpl for pub, with
// dates and a random serial filled in.
func rvSign(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey, parent *rvCA, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rvCATmpl is the template of a CA certificate named name.
func rvCATmpl(name string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

// rvRoot makes a self-signed root CA.
func rvRoot(t testing.TB, name string) *rvCA {
	t.Helper()
	k := rvKey(t)
	return &rvCA{cert: rvSign(t, rvCATmpl(name), k.Public(), nil, k), key: k}
}

// rvClient has ca issue a client certificate.
func rvClient(t *testing.T, ca *rvCA, name string) *x509.Certificate {
	t.Helper()
	k := rvKey(t)
	return rvSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, k.Public(), ca, nil)
}

// rvCRLFile writes an empty, fresh CRL of ca and returns its path.
func rvCRLFile(t *testing.T, ca *rvCA, serials ...*big.Int) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.crl")
	if err := os.WriteFile(f, makeCRL(t, ca.cert, ca.key, -time.Minute, time.Hour, nil, serials...), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReviewCrossSignedCAOrder: a ca bundle holding an intermediate, its
// self-signed root and a cross-certificate of that root by another root
// (same subject and key as the root, the usual "cross-signed" bundle).
// crypto/x509 ends the client's chain at the intermediate; chain mode
// continues it through caLinks, which takes the first certificate of
// CAs whose name and signature fit: the cross-certificate when it comes
// before the root. The client is then refused for want of a revocation
// answer about the cross-certificate (from the other root, whose CRL the
// site never needed), while the path through the self-signed root has
// every answer. Listing the root first accepts the same client: the
// outcome depends on the order of the file. And without the other root
// in ca, New refuses the configuration outright (unrooted), though every
// chain can be rooted at the root.
func TestReviewCrossSignedCAOrder(t *testing.T) {
	r1, r2 := rvRoot(t, "Root One"), rvRoot(t, "Root Two")
	cross := rvSign(t, rvCATmpl("Root One"), r1.key.Public(), r2, nil) // Root One by Root Two
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), r1, nil), key: ik}
	leaf := rvClient(t, inter, "alice")
	crls := []string{rvCRLFile(t, inter), rvCRLFile(t, r1)} // all the path through Root One needs

	for _, order := range []struct {
		name string
		cas  []*x509.Certificate
	}{
		{"root first", []*x509.Certificate{inter.cert, r1.cert, cross, r2.cert}},
		{"cross-certificate first", []*x509.Certificate{inter.cert, cross, r1.cert, r2.cert}},
	} {
		t.Run(order.name, func(t *testing.T) {
			chain := shortestChain(t, leaf, nil, order.cas...)
			if len(chain) != 2 {
				t.Fatalf("verified chain of %d, want 2 (the case under test)", len(chain))
			}
			p := Policy{CAs: order.cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: crls}
			if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
				t.Errorf("Check: %v; want accepted (intermediate -> Root One, self-signed, is fully answered)", err)
			}
		})
	}
	t.Run("other root absent", func(t *testing.T) {
		p := Policy{CAs: []*x509.Certificate{inter.cert, cross, r1.cert}, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: crls}
		if _, err := New(p, Options{}); err != nil {
			t.Errorf("New: %v; want accepted (every CA of ca reaches the self-signed Root One)", err)
		}
	})
}

// TestReviewSHA1IntermediateInCA: an intermediate in the ca file signed
// with SHA-1 by its root (old enterprise PKIs). crypto/x509 takes it as
// a trust anchor without looking at its signature, and accepted its
// clients before 19dc29f; in chain mode newCALinks links it to its root
// with CheckSignatureFrom, which refuses SHA-1, so New now refuses the
// configuration saying the root "is not in ca" although it is (while
// selfSigned, with CheckSignature, accepts a SHA-1 self-signature).
func TestReviewSHA1IntermediateInCA(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rootT := rvCATmpl("SHA-1 era root")
	rootT.SignatureAlgorithm = x509.SHA1WithRSA
	root := &rvCA{cert: rvSign(t, rootT, rk.Public(), nil, rk), key: rk}
	ik := rvKey(t)
	interT := rvCATmpl("SHA-1 era intermediate")
	interT.SignatureAlgorithm = x509.SHA1WithRSA
	inter := &rvCA{cert: rvSign(t, interT, ik.Public(), root, nil), key: ik}
	leaf := rvClient(t, inter, "bob")
	cas := []*x509.Certificate{inter.cert, root.cert}
	chain := shortestChain(t, leaf, nil, cas...)
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: []string{rvCRLFile(t, inter), rvCRLFile(t, root)}}
	chk, err := New(p, Options{})
	if err != nil {
		t.Fatalf("New: %v; want accepted (the root is in ca)", err)
	}
	defer chk.Close()
	if err := chk.Check(context.Background(), chain); err != nil {
		t.Errorf("Check: %v; want accepted", err)
	}
}

// TestReviewSelfSignedClientCertInCA: a self-signed client certificate
// listed in ca (pinning a client) is a chain of one that Check already
// checks against itself (rooted), and OpenSSL (`openssl verify -CAfile
// self.pem self.pem`, nginx's ssl_client_certificate) accepts it with
// basicConstraints CA:FALSE. ReadCAFile now refuses it, so a working
// configuration no longer starts; the same certificate without basic
// constraints (what Go and many tools make) passes checkCA as an "old
// root": the refusal turns on whether the extension is present.
func TestReviewSelfSignedClientCertInCA(t *testing.T) {
	dir := t.TempDir()
	for _, bc := range []bool{false, true} {
		k := rvKey(t)
		c := rvSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "pinned client"}, BasicConstraintsValid: bc,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, k.Public(), nil, k)
		f := filepath.Join(dir, "pinned.pem")
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCAFile(f); err != nil {
			t.Errorf("basic constraints %v (CA:FALSE): ReadCAFile: %v; want accepted as without them", bc, err)
		}
	}
}

// TestReviewOCSPWrongSerialNotGarbage: a responder that answers with a
// well-formed, correctly signed OCSP response about another serial is
// refused as "the responder's answer is not an OCSP response":
// explainOCSP (19dc29f) takes any ocsp.ParseError for garbage, and
// ocspclient's parseFailure (53d3706) keeps the ParseError "no response
// matching the supplied certificate" as the cause of ErrWrongSerial. For
// real garbage the words come twice, once from each.
func TestReviewOCSPWrongSerialNotGarbage(t *testing.T) {
	ca := rvRoot(t, "OCSP CA")
	leaf := rvClient(t, ca, "carol")
	now := time.Now()
	other, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(4242),
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, body, want string
	}{
		{"other serial", string(other), "serial"},
		{"garbage", "garbage!", "not an OCSP response"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			p := Policy{CAs: []*x509.Certificate{ca.cert}, VerifyDepth: 1, Revocation: RevocationLeaf, OCSP: true, OCSPResponder: srv.URL}
			err := newChecker(t, p, Options{}).Check(context.Background(), shortestChain(t, leaf, nil, ca.cert))
			r := wantRefusal(t, err, ReasonUnknown)
			msg := r.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("refusal %q, want it to say %q", msg, tt.want)
			}
			if tt.name == "other serial" && strings.Contains(msg, "not an OCSP response") {
				t.Errorf("refusal %q calls a well-formed answer about another serial garbage", msg)
			}
			if n := strings.Count(msg, "not an OCSP response"); n > 1 {
				t.Errorf("refusal %q says %q %d times", msg, "not an OCSP response", n)
			}
		})
	}
}

// TestReviewRootRolloverLinks: a root key rollover as RFC 4210 section
// 4.4 does it: the old and the new self-signed root, both named "Root",
// and the two link certificates, NewWithOld (the new key signed by the
// old) and OldWithNew (the old key signed by the new). With the link
// certificates listed before the roots, newCALinks links the
// intermediate to NewWithOld, NewWithOld to OldWithNew and OldWithNew
// back to NewWithOld: a loop that never reaches a self-signed root.
// Validate lets it through (every CA has "an issuer"), and in chain mode
// every client is refused for want of an answer about the link
// certificates, though intermediate -> new root is fully answered.
func TestReviewRootRolloverLinks(t *testing.T) {
	rOld, rNew := rvRoot(t, "Root"), rvRoot(t, "Root")
	newWithOld := rvSign(t, rvCATmpl("Root"), rNew.key.Public(), rOld, nil)
	oldWithNew := rvSign(t, rvCATmpl("Root"), rOld.key.Public(), rNew, nil)
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), rNew, nil), key: ik}
	leaf := rvClient(t, inter, "dave")
	cas := []*x509.Certificate{inter.cert, newWithOld, oldWithNew, rOld.cert, rNew.cert}
	chain := shortestChain(t, leaf, nil, cas...)
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: []string{rvCRLFile(t, inter), rvCRLFile(t, rNew)}}
	if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
		t.Errorf("Check: %v; want accepted (intermediate -> the new self-signed root is fully answered)", err)
	}
	full, rooted := newCALinks(cas).extend(chain, time.Now())
	if !rooted {
		t.Errorf("extend: %d certificates, not rooted; want it to end at a self-signed root", len(full))
	}
}
