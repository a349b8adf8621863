package clientauth

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// BenchmarkCheckCached is the cost of Check in a handshake when the OCSP
// answer about the client's certificate is cached: what every handshake
// but the first pays.
func BenchmarkCheckCached(b *testing.B) {
	ca := testenv.NewOpenSSLCA(b, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	benchCheck(b, Policy{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1, Revocation: RevocationLeaf, OCSP: true}, c)
}

// BenchmarkCheckCRLFile is the same with the answer from a CRL file.
func BenchmarkCheckCRLFile(b *testing.B) {
	ca := testenv.NewOpenSSLCA(b, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	for i := range 100 { // a CRL with some entries
		ca.Revoke(client(ca, "r"+string(rune('a'+i%26))).CertFile, "")
	}
	benchCheck(b, Policy{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1, Revocation: RevocationLeaf, CRLFiles: []string{ca.CRLFile}}, c)
}

// BenchmarkCheckChainCRLFiles is the same in chain mode for the usual
// bundle (intermediate + root): crypto/x509 ends the chain at the
// intermediate, and Check continues it to the root (caLinks.extend).
func BenchmarkCheckChainCRLFiles(b *testing.B) {
	root := testenv.NewOpenSSLCA(b, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(b, testenv.OpenSSLCAOptions{Parent: root})
	c := client(inter, "c")
	p := Policy{CAs: []*x509.Certificate{inter.Cert, root.Cert}, VerifyDepth: 2, Revocation: RevocationChain,
		CRLFiles: []string{inter.CRLFile, root.CRLFile}}
	benchCheckChain(b, p, []*x509.Certificate{c.Cert, inter.Cert})
}

// benchCheck checks c once (filling the caches), then measures Check.
func benchCheck(b *testing.B, p Policy, c *testenv.IssuedCert) {
	benchCheckChain(b, p, verified(b, c))
}

// benchCheckChain checks chain once (filling the caches), then measures
// Check.
func benchCheckChain(b *testing.B, p Policy, chain []*x509.Certificate) {
	chk, err := New(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = chk.Close() })
	ctx := context.Background()
	if err := chk.Check(ctx, chain); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := chk.Check(ctx, chain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewCALinks500 is the cost of linking a large ca bundle, paid
// by New (and by ValidateCAs in chain mode) at every start and reload:
// 250 self-signed roots, each with an intermediate, listed
// intermediates first, as a bundle made from a public root store is.
func BenchmarkNewCALinks500(b *testing.B) {
	cas := make([]*x509.Certificate, 0, 500)
	var roots []*x509.Certificate
	for i := range 250 {
		root := rvRoot(b, fmt.Sprintf("Bench Root %d", i))
		ik := rvKey(b)
		cas = append(cas, rvSign(b, rvCATmpl(fmt.Sprintf("Bench Inter %d", i)), ik.Public(), root, nil))
		roots = append(roots, root.cert)
	}
	cas = append(cas, roots...)
	if err := newCALinks(cas).unrooted(cas); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		newCALinks(cas)
	}
}
