package clientauth

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// rvLadder makes a root valid from..to and levels of CAs below it, each
// level perWidth certificates of one name and one key (re-issues of one
// intermediate, as a bundle collecting every re-issue holds them), each
// signed by the key of the level above: every certificate of a level is
// an issuer of every certificate of the level below, at the same
// distance from the root. It returns the CAs, the root first, and the
// last level's signer.
func rvLadder(t *testing.T, levels, perWidth int, from, to time.Time) ([]*x509.Certificate, *rvCA) {
	t.Helper()
	rk := rvKey(t)
	parent := rvRootAt(t, "Ladder Root", rk, nil, from, to)
	cas := []*x509.Certificate{parent.cert}
	for l := 1; l <= levels; l++ {
		k := rvKey(t)
		var level *rvCA
		for range perWidth {
			c := rvSign(t, rvCATmpl(fmt.Sprintf("Ladder %d", l)), k.Public(), parent, nil)
			cas = append(cas, c)
			level = &rvCA{cert: c, key: k}
		}
		parent = level
	}
	return cas, parent
}

// TestReview3ValidUpExponential: caLinks.validUp tries every way up to a
// root and remembers nothing, and pick calls it again at every step of
// extend. A ca bundle of L levels of 2 re-issues each (same name, same
// key: each level's certificates are all issuers of each of the next)
// whose root has expired makes 2^L ways, all tried, for every chain of a
// client under the last level (crypto/x509 ends the chain at that level,
// the pool's first certificate it meets, and never sees the root).
// Check is not bounded by Options.Timeout here: no context is looked at.
// Under -race, 20 levels (41 certificates) take 0.9 s and 22 levels 3 s;
// 200 certificates as 5 levels of 40 take 1.5 s per handshake, and as
// 100 levels of 2 would never end. upward remembers each CA's answer:
// each case here takes well under a millisecond.
func TestReview3ValidUpExponential(t *testing.T) {
	for _, tc := range []struct{ levels, perWidth int }{{20, 2}, {100, 2}, {5, 40}} {
		t.Run(fmt.Sprintf("%dx%d", tc.levels, tc.perWidth), func(t *testing.T) {
			cas, last := rvLadder(t, tc.levels, tc.perWidth, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
			leaf := rvClient(t, last, "client")
			chain := shortestChain(t, leaf, nil, cas[1:]...)
			if len(chain) != 2 {
				t.Fatalf("verified chain of %d, want 2 (the case under test)", len(chain))
			}
			crl := rvCRLFileOf(t, last, big.NewInt(1))
			chk := newChecker(t, Policy{CAs: cas, VerifyDepth: 1, Revocation: RevocationChain, CRLFiles: []string{crl}, Unknown: UnknownAllow}, Options{})
			start := time.Now()
			err := chk.Check(context.Background(), chain)
			took := time.Since(start)
			t.Logf("Check over %d CAs (%d levels of %d): %v in %v", len(cas), tc.levels, tc.perWidth, err, took)
			wantRefusal(t, err, ReasonExpired)
			if took > 250*time.Millisecond {
				t.Errorf("Check took %v for %d CAs; want well under 250ms (the ways up are at most a few per CA)", took, len(cas))
			}
		})
	}
}

// TestReview3ChainOfOneIssuerRootedByTwin: in chain mode a CA of ca may
// reach a root only through a twin (a cross-certificate whose issuer is
// not in ca, with a copy of the same name and key issued under the root:
// newCALinks, rooted). A CA certificate of ca issued by such a
// cross-certificate alone (its authority key identifier picks it out,
// the copy has another), presented as the client's own, is a chain of
// one. extend continues it with its issuer and stops there, not rooted,
// without putting the issuer's twin in its place and going on to the
// root as it does for a chain ending at that issuer: the issuer is then
// checked against nothing. With deny a good client is refused as
// unknown; with allow the twin revoked by the root's CRL is not seen.
// The same issuer at the end of a chain of two is checked through its
// twin (TestExtendTwin).
func TestReview3ChainOfOneIssuerRootedByTwin(t *testing.T) {
	root := rvRoot(t, "Twin Root")
	missing := rvRoot(t, "Absent Cross Signer")
	pk := rvKey(t)
	viaRoot := &rvCA{cert: rvSign(t, rvCATmpl("P"), pk.Public(), root, nil), key: pk}
	crossTmpl := rvCATmpl("P")
	crossTmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 14}, Value: []byte{0x04, 0x00}}} // empty subject key identifier
	cross := &rvCA{cert: rvSign(t, crossTmpl, pk.Public(), missing, nil), key: pk}
	if len(cross.cert.SubjectKeyId) != 0 || len(viaRoot.cert.SubjectKeyId) == 0 {
		t.Fatalf("subject key identifiers %x, %x: want the cross-certificate's empty", cross.cert.SubjectKeyId, viaRoot.cert.SubjectKeyId)
	}
	ck := rvKey(t)
	cTmpl := rvCATmpl("C")
	cTmpl.AuthorityKeyId = []byte("not-the-root-copy-id")
	c := rvSign(t, cTmpl, ck.Public(), cross, nil)
	cTwin := rvSign(t, rvCATmpl("C"), ck.Public(), viaRoot, nil)
	cas := []*x509.Certificate{root.cert, viaRoot.cert, cross.cert, cTwin, c}
	chain := shortestChain(t, c, nil, cas...)
	if len(chain) != 1 {
		t.Fatalf("verified chain of %d, want 1 (the case under test)", len(chain))
	}
	pCRL := rvCRLFileOf(t, viaRoot)
	t.Run("good/deny", func(t *testing.T) {
		p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: []string{pCRL, rvCRLFileOf(t, root)}, Unknown: UnknownDeny}
		if err := newChecker(t, p, Options{}).Check(context.Background(), chain); err != nil {
			t.Errorf("Check: %v; want accepted (C against P's CRL, P through its twin against the root's)", err)
		}
	})
	t.Run("twin revoked/allow", func(t *testing.T) {
		p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationChain, CRLFiles: []string{pCRL, rvCRLFileOf(t, root, viaRoot.cert.SerialNumber)}, Unknown: UnknownAllow}
		err := newChecker(t, p, Options{}).Check(context.Background(), chain)
		if err == nil {
			t.Fatal("Check: accepted; want refused as revoked (the root's CRL revokes the twin standing for C's issuer)")
		}
		wantRefusal(t, err, ReasonRevoked)
	})
}

// TestChainOfOneLeafModeIssuerItself: in leaf mode a chain of one is
// checked against its issuer itself, as a chain of two ending at that
// issuer is, not against a twin standing in for it: the fix of
// TestReview3ChainOfOneIssuerRootedByTwin (a chain of one continued as a
// chain of two would be, in chain mode) must not refuse, in leaf mode, a
// client whose valid issuer P has only an expired twin under the root.
func TestChainOfOneLeafModeIssuerItself(t *testing.T) {
	root := rvRoot(t, "Twin Root")
	missing := rvRoot(t, "Absent Cross Signer")
	pk := rvKey(t)
	viaRoot := &rvCA{cert: rvSignAt(t, rvCATmpl("P"), pk.Public(), root, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)), key: pk}
	crossTmpl := rvCATmpl("P")
	crossTmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 14}, Value: []byte{0x04, 0x00}}} // empty subject key identifier
	cross := &rvCA{cert: rvSign(t, crossTmpl, pk.Public(), missing, nil), key: pk}
	ck := rvKey(t)
	cTmpl := rvCATmpl("C")
	cTmpl.AuthorityKeyId = []byte("not-the-root-copy-id")
	c := rvSign(t, cTmpl, ck.Public(), cross, nil)
	cas := []*x509.Certificate{root.cert, viaRoot.cert, cross.cert, c}
	// P's CRL, signed by P's key (crypto/x509 signs none for an issuer
	// without a subject key identifier, as cross is).
	p := Policy{CAs: cas, VerifyDepth: 2, Revocation: RevocationLeaf, CRLFiles: []string{rvCRLFileOf(t, viaRoot)}, Unknown: UnknownDeny}
	if err := newChecker(t, p, Options{}).Check(context.Background(), []*x509.Certificate{c}); err != nil {
		t.Errorf("Check: %v; want accepted (C against its valid issuer P's CRL)", err)
	}
}
