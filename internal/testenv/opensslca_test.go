package testenv

import (
	"crypto/x509"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ocspQuery asks ca's responder about c with the openssl ocsp client and
// returns its output.
func ocspQuery(t *testing.T, ca *OpenSSLCA, c *IssuedCert) string {
	t.Helper()
	cmd := exec.Command("openssl", "ocsp", "-issuer", ca.CertFile, "-cert", c.CertFile,
		"-url", ca.OCSPURL, "-CAfile", rootOf(ca).CertFile, "-resp_text")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ocsp client: %v\n%s", err, out)
	}
	return string(out)
}

// rootOf returns the root above ca.
func rootOf(ca *OpenSSLCA) *OpenSSLCA {
	for ca.Parent != nil {
		ca = ca.Parent
	}
	return ca
}

func TestOpenSSLCA(t *testing.T) {
	root := NewOpenSSLCA(t, OpenSSLCAOptions{})
	inter := NewOpenSSLCA(t, OpenSSLCAOptions{Parent: root})
	c := inter.Issue(IssueOptions{CommonName: "localhost", DNSNames: []string{"localhost"}, IPAddresses: []string{"127.0.0.1"}})

	if len(c.Cert.OCSPServer) != 1 || c.Cert.OCSPServer[0] != inter.OCSPURL {
		t.Errorf("OCSPServer = %q, want [%s]", c.Cert.OCSPServer, inter.OCSPURL)
	}
	if len(c.Cert.CRLDistributionPoints) != 1 || c.Cert.CRLDistributionPoints[0] != inter.CRLURL {
		t.Errorf("CRLDistributionPoints = %q, want [%s]", c.Cert.CRLDistributionPoints, inter.CRLURL)
	}
	if len(inter.Cert.OCSPServer) != 1 || inter.Cert.OCSPServer[0] != root.OCSPURL {
		t.Errorf("intermediate OCSPServer = %q, want [%s]", inter.Cert.OCSPServer, root.OCSPURL)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	inters := x509.NewCertPool()
	inters.AddCert(inter.Cert)
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "localhost"}); err != nil {
		t.Errorf("verify leaf: %v", err)
	}
	chain, err := os.ReadFile(c.ChainFile)
	if err != nil || strings.Count(string(chain), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("chain file: %v, %d certificates", err, strings.Count(string(chain), "BEGIN CERTIFICATE"))
	}

	inter.StartOCSP(OCSPResponderOptions{})
	if out := ocspQuery(t, inter, c); !strings.Contains(out, ": good") {
		t.Fatalf("before revocation:\n%s", out)
	}
	inter.Revoke(c.CertFile, "keyCompromise")
	if out := ocspQuery(t, inter, c); !strings.Contains(out, ": revoked") {
		t.Fatalf("after revocation:\n%s", out)
	}
	crl, err := os.ReadFile(inter.CRLDERFile)
	if err != nil {
		t.Fatal(err)
	}
	list, err := x509.ParseRevocationList(crl)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(inter.Cert); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	if len(list.RevokedCertificateEntries) != 1 || list.RevokedCertificateEntries[0].SerialNumber.Cmp(c.Cert.SerialNumber) != 0 {
		t.Errorf("CRL entries = %v, want serial %x", list.RevokedCertificateEntries, c.Cert.SerialNumber)
	}
	inter.StopOCSP()
}
