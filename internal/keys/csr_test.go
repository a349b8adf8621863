package keys

import (
	"crypto"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
)

// checkCSR builds a CSR with CSR and checks its signature, SANs and CN.
func checkCSR(t *testing.T, key crypto.Signer, dns []string, ips []net.IP, wantCN string) {
	t.Helper()
	der, err := CSR(key, dns, ips)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("ParseCertificateRequest: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Errorf("CheckSignature: %v", err)
	}
	if !slices.Equal(req.DNSNames, dns) {
		t.Errorf("DNSNames = %q, want %q", req.DNSNames, dns)
	}
	if !slices.EqualFunc(req.IPAddresses, ips, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", req.IPAddresses, ips)
	}
	if req.Subject.CommonName != wantCN {
		t.Errorf("CommonName = %q, want %q", req.Subject.CommonName, wantCN)
	}
	if pub, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		t.Errorf("CSR public key does not match the signing key")
	}
}

func TestCSR(t *testing.T) {
	key := mustGenerate(t, ECDSAP256)
	name64 := strings.Repeat("a", 60) + ".com"           // exactly 64 bytes
	name65 := strings.Repeat("a", 51) + ".bbbbbbbbb.com" // 65 bytes
	if len(name64) != 64 || len(name65) != 65 {
		t.Fatalf("test names are %d and %d bytes", len(name64), len(name65))
	}
	v4, v6 := net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")
	tests := []struct {
		name   string
		dns    []string
		ips    []net.IP
		wantCN string
	}{
		{"one name", []string{"example.com"}, nil, "example.com"},
		{"order kept", []string{"b.example", "a.example", "*.c.example"}, nil, "b.example"},
		{"names and ips", []string{"example.com"}, []net.IP{v4, v6}, "example.com"},
		{"ip only v4", nil, []net.IP{v4}, "192.0.2.1"},
		{"ip only v6", nil, []net.IP{v6, v4}, "2001:db8::1"},
		{"64-byte name is CN", []string{name64, "example.com"}, nil, name64},
		{"65-byte name not CN", []string{name65, "example.com"}, nil, ""},
		{"idna name", []string{"xn--bcher-kva.example"}, nil, "xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCSR(t, key, tt.dns, tt.ips, tt.wantCN)
		})
	}
}

func TestCSRErrors(t *testing.T) {
	key := mustGenerate(t, ECDSAP256)
	tests := []struct {
		name string
		key  crypto.Signer
		dns  []string
		ips  []net.IP
	}{
		{"no names", key, nil, nil},
		{"empty slices", key, []string{}, []net.IP{}},
		{"empty dns name", key, []string{"example.com", ""}, nil},
		{"nil ip", key, nil, []net.IP{nil}},
		{"nil key", nil, []string{"example.com"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if der, err := CSR(tt.key, tt.dns, tt.ips); err == nil {
				t.Errorf("CSR = %d bytes, nil error; want error", len(der))
			}
		})
	}
}
