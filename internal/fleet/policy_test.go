package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
)

// TestAllows: a policy name covers itself; a wildcard covers itself and
// one label directly under its base, nothing deeper and not the base.
func TestAllows(t *testing.T) {
	a := &Agent{Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}}
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{[]string{"db1.example.com"}, true},
		{[]string{"DB1.Example.com."}, true},
		{[]string{"*.db1.example.com"}, true},
		{[]string{"replica.db1.example.com", "db1.example.com"}, true},
		{[]string{"a.b.db1.example.com"}, false},
		{[]string{"*.example.com"}, false},
		{[]string{"example.com"}, false},
		{[]string{"db2.example.com"}, false},
		{[]string{"db1.example.com", "evil.example.com"}, false},
		{[]string{"xdb1.example.com"}, false},
		{[]string{"192.0.2.1"}, false},
		{nil, false},
	} {
		got, err := a.Allows(tc.names)
		if (err == nil) != tc.ok {
			t.Errorf("Allows(%q) = %q, %v; want ok %v", tc.names, got, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrPolicy) || !strings.HasPrefix(err.Error(), "policy")) {
			t.Errorf("Allows(%q): %v, want an error starting with \"policy\"", tc.names, err)
		}
	}
	_, err := a.Allows([]string{"db1.example.com", "evil.example.com"})
	if err == nil || !strings.Contains(err.Error(), "evil.example.com") {
		t.Errorf("the refusal does not name the offending name: %v", err)
	}
}

// TestCheckCSR: a CSR's DNS names and common name are checked against
// the policy; other kinds of names are refused.
func TestCheckCSR(t *testing.T) {
	a := &Agent{Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := func(tmpl *x509.CertificateRequest) *x509.CertificateRequest {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	names, err := a.CheckCSR(csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "db1.example.com"}, DNSNames: []string{"db1.example.com", "*.db1.example.com"}}))
	if err != nil || !slices.Equal(names, []string{"db1.example.com", "*.db1.example.com"}) {
		t.Errorf("CheckCSR: %q, %v", names, err)
	}
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"common name outside": {Subject: pkix.Name{CommonName: "evil.example.com"}, DNSNames: []string{"db1.example.com"}},
		"IP address":          {DNSNames: []string{"db1.example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}},
		"e-mail address":      {DNSNames: []string{"db1.example.com"}, EmailAddresses: []string{"ops@example.com"}},
		"no names":            {},
	} {
		if _, err := a.CheckCSR(csr(tmpl)); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v, want a policy error", name, err)
		}
	}
}
