package clientauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// rvCRLFileOf is rvCRLFile with the file named for the CA, so that
// several can be made in one test.
func rvCRLFileOf(t *testing.T, ca *rvCA, serials ...*big.Int) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), ca.cert.Subject.CommonName+".crl")
	if err := os.WriteFile(f, makeCRL(t, ca.cert, ca.key, -time.Minute, time.Hour, nil, serials...), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReview2ChainOfOneIssuerUnrooted: in leaf mode ca may hold an
// intermediate without its root (TestChainModeNeedsRoot). A CA
// certificate of ca issued by that intermediate, presented as the
// client's own, is a chain of one whose issuer is in ca, with a CRL of
// that issuer at hand revoking it. Check says "its issuer is not in ca"
// (caLinks only links CAs on a way to a self-signed root), so nothing is
// asked: refused as unknown with deny, and let in with allow although
// the CRL at hand says revoked.
func TestReview2ChainOfOneIssuerUnrooted(t *testing.T) {
	root := rvRoot(t, "Absent Root")
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), root, nil), key: ik}
	sk := rvKey(t)
	sub := rvSign(t, rvCATmpl("Sub"), sk.Public(), inter, nil)
	cas := []*x509.Certificate{inter.cert, sub}
	chain := shortestChain(t, sub, nil, cas...)
	if len(chain) != 1 {
		t.Fatalf("verified chain of %d, want 1 (the case under test)", len(chain))
	}
	crl := rvCRLFileOf(t, inter, sub.SerialNumber)
	for _, unknown := range []Unknown{UnknownDeny, UnknownAllow} {
		t.Run(string(unknown), func(t *testing.T) {
			p := Policy{CAs: cas, VerifyDepth: 1, Revocation: RevocationLeaf, CRLFiles: []string{crl}, Unknown: unknown}
			err := newChecker(t, p, Options{}).Check(context.Background(), chain)
			if err == nil {
				t.Fatal("Check: accepted; want refused as revoked (the CRL of its issuer, in ca, lists it)")
			}
			wantRefusal(t, err, ReasonRevoked)
		})
	}
}

// TestReview2RootReissuedOtherKeyID: a root re-issued with the same name
// and key but another subject key identifier (a new validity period,
// made by a tool that derives the identifier otherwise: Go 1.25 moved
// from SHA-1 to truncated SHA-256), both in ca. The intermediate below,
// in ca too, is revoked by the root's CRL, whose authority key
// identifier is the first root's. newCALinks links the intermediate to
// whichever root comes first in ca; with the re-issued one, crl.covers
// drops the CRL (its authority key identifier is not that certificate's
// subject key identifier) though its signature verifies with the same
// key, so nothing answers: a revoked intermediate is let in with allow,
// and with deny every client is refused depending on the file's order.
// crypto/x509 (findPotentialParents) and OpenSSL (X509_check_issued)
// take the issuer whose subject key identifier is the intermediate's
// authority key identifier; `openssl verify -crl_check_all` with the
// same files says "error 23 at 1 depth lookup: certificate revoked".
func TestReview2RootReissuedOtherKeyID(t *testing.T) {
	rk := rvKey(t)
	first := rvCATmpl("Root")
	first.SubjectKeyId = []byte("first-root-key-id-1")
	rootA := &rvCA{cert: rvSign(t, first, rk.Public(), nil, rk), key: rk}
	again := rvCATmpl("Root")
	again.SubjectKeyId = []byte("reissued-key-id-2")
	rootB := rvSign(t, again, rk.Public(), nil, rk)
	ik := rvKey(t)
	inter := &rvCA{cert: rvSign(t, rvCATmpl("Inter"), ik.Public(), rootA, nil), key: ik}
	leaf := rvClient(t, inter, "erin")
	crls := []string{rvCRLFileOf(t, rootA, inter.cert.SerialNumber), rvCRLFileOf(t, inter)}
	for _, order := range []struct {
		name string
		cas  []*x509.Certificate
	}{
		{"first root first", []*x509.Certificate{inter.cert, rootA.cert, rootB}},
		{"re-issued root first", []*x509.Certificate{inter.cert, rootB, rootA.cert}},
	} {
		for _, unknown := range []Unknown{UnknownDeny, UnknownAllow} {
			t.Run(order.name+"/"+string(unknown), func(t *testing.T) {
				p := Policy{CAs: order.cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: crls, Unknown: unknown}
				err := newChecker(t, p, Options{}).Check(context.Background(), shortestChain(t, leaf, nil, order.cas...))
				if err == nil {
					t.Fatal("Check: accepted; want the intermediate refused as revoked by the root's CRL")
				}
				wantRefusal(t, err, ReasonRevoked)
			})
		}
	}
}

// rvSignAt is rvSign with the validity period given.
func rvSignAt(t *testing.T, tmpl *x509.Certificate, pub crypto.PublicKey, parent *rvCA, from, to time.Time) *x509.Certificate {
	t.Helper()
	rvSign(t, tmpl, pub, parent, nil) // fills in the serial; signed again below
	tmpl.NotBefore, tmpl.NotAfter = from, to
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, pub, parent.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReview2ExtendedThroughExpired: chain mode continues crypto/x509's
// chain, which ends at a CA of ca, with certificates of ca that
// crypto/x509 never saw (the anchor's issuers, or the twin standing in
// for an unrooted cross-certificate, extend), but never looks at their
// validity periods (checkShape sees only the verified chain). Here that
// certificate has expired; it was revoked, and its entry left its
// issuer's CRL after it expired, as RFC 5280 section 3.3 allows. Check
// finds it on no CRL and accepts. crypto/x509, given the same
// certificates as one chain, and OpenSSL (`openssl verify -CAfile
// sub+inter+root -crl_check_all`: "error 10 at 2 depth lookup:
// certificate has expired") refuse.
func TestReview2ExtendedThroughExpired(t *testing.T) {
	now := time.Now()
	expired := func(t *testing.T, name string, pub crypto.PublicKey, parent *rvCA) *x509.Certificate {
		return rvSignAt(t, rvCATmpl(name), pub, parent, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -30))
	}
	t.Run("issuer of the anchor", func(t *testing.T) {
		root := rvRoot(t, "Root")
		ik := rvKey(t)
		inter := &rvCA{cert: expired(t, "Old Inter", ik.Public(), root), key: ik}
		sk := rvKey(t)
		sub := &rvCA{cert: rvSign(t, rvCATmpl("Sub"), sk.Public(), inter, nil), key: sk}
		cas := []*x509.Certificate{sub.cert, inter.cert, root.cert}
		crls := []string{rvCRLFileOf(t, root), rvCRLFileOf(t, inter), rvCRLFileOf(t, sub)}
		checkExpiredAbove(t, cas, crls, rvClient(t, sub, "grace"))
	})
	t.Run("twin of the anchor", func(t *testing.T) {
		root, other := rvRoot(t, "Root"), rvRoot(t, "Other Root") // other: not in ca
		ik := rvKey(t)
		twin := &rvCA{cert: expired(t, "Inter", ik.Public(), root), key: ik}
		cross := rvSign(t, rvCATmpl("Inter"), ik.Public(), other, nil)
		cas := []*x509.Certificate{cross, twin.cert, root.cert}
		crls := []string{rvCRLFileOf(t, root), rvCRLFileOf(t, twin)}
		checkExpiredAbove(t, cas, crls, rvClient(t, twin, "heidi"))
	})
}

// checkExpiredAbove fails unless Check, in chain mode, refuses leaf as
// expired, its verified chain (two certificates) taken up through cas.
func checkExpiredAbove(t *testing.T, cas []*x509.Certificate, crls []string, leaf *x509.Certificate) {
	t.Helper()
	chain := shortestChain(t, leaf, nil, cas...)
	if len(chain) != 2 {
		t.Fatalf("verified chain of %d, want 2 (the case under test)", len(chain))
	}
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: crls}
	full, _ := newChecker(t, p, Options{}).links.extend(chain, time.Now())
	err := newChecker(t, p, Options{}).Check(context.Background(), chain)
	if err == nil {
		t.Fatalf("Check: accepted through %d certificates, one expired; want refused (expired)", len(full))
	}
	wantRefusal(t, err, ReasonExpired)
}

// TestReview2PinnedClientCannotIssue pins what makes a self-signed
// client certificate in ca (checkCA takes CA:FALSE since c96eed5) safe:
// crypto/x509 refuses a chain through a trust anchor that may not sign
// certificates (CheckSignatureFrom: CA:FALSE, or version 3 without basic
// constraints, or no keyCertSign), so its holder cannot make
// certificates for other names; and newCALinks links nothing to it.
// Should the server ever verify chains otherwise, this must still hold.
func TestReview2PinnedClientCannotIssue(t *testing.T) {
	for _, bc := range []bool{false, true} {
		k := rvKey(t)
		pinned := &rvCA{cert: rvSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "pinned"}, BasicConstraintsValid: bc,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, k.Public(), nil, k), key: k}
		if err := checkCA(pinned.cert); err != nil {
			t.Fatalf("checkCA(pinned, basic constraints %v): %v; want taken", bc, err)
		}
		minted := rvClient(t, pinned, "admin")
		roots := x509.NewCertPool()
		roots.AddCert(pinned.cert)
		if _, err := minted.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Errorf("basic constraints %v: a certificate made with the pinned client's key verifies", bc)
		}
		if err := issued(pinned.cert, minted, true); err == nil {
			t.Errorf("basic constraints %v: issued takes the pinned client as an issuer", bc)
		}
	}
}
