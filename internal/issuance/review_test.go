package issuance

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// TestReviewRealCAChains (pins held behaviour): chains and leaves real
// CAs send are kept by Check: Let's Encrypt's leaf, intermediate and a
// cross-signed root whose cross-signature has expired (same key as the
// root that signs the intermediate); a chain ending with the self-signed
// root; a leaf whose common name is not among its SANs; a leaf naming an
// IDNA name and a wildcard with its base, in another case than ordered.
func TestReviewRealCAChains(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	key := newKey(t)
	leaf := func(cn string, names ...string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			DNSNames: names, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
		return issue(t, tmpl, ca.inter, key.Public(), ca.interKey)
	}
	oldKey := newKey(t)
	oldTmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "old root"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: now.Add(-90 * 24 * time.Hour), NotAfter: now.Add(-time.Hour)}
	old := issue(t, oldTmpl, oldTmpl, oldKey.Public(), oldKey)
	crossTmpl := &x509.Certificate{SerialNumber: big.NewInt(10), Subject: ca.root.Subject,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}
	cross := issue(t, crossTmpl, old, ca.rootKey.Public(), oldKey)
	plain := leaf("a.example", "a.example")
	for _, tc := range []struct {
		name  string
		chain []byte
		names []string
	}{
		{"expired cross-signed root", pemOf(plain, ca.inter, cross), []string{"a.example"}},
		{"root included", pemOf(plain, ca.inter, ca.root), []string{"a.example"}},
		{"CN not among the SANs", pemOf(leaf("other.example", "a.example"), ca.inter), []string{"a.example"}},
		{"IDNA, wildcard and base, other case", pemOf(leaf("", "XN--BCHER-KVA.example", "*.Example.com", "example.COM"), ca.inter),
			[]string{"xn--bcher-kva.example", "*.example.com", "example.com"}},
	} {
		if _, err := Check(tc.chain, key, tc.names); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
