package solvers

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"
)

func TestValidToken(t *testing.T) {
	good := []string{"a", "AbC-_09", strings.Repeat("x", MaxTokenLen), "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"}
	bad := []string{"", strings.Repeat("x", MaxTokenLen+1), "a/b", "..", "a.b", "a+b", "a=", "a b", "a%2F", "ä", "a\x00"}
	for _, s := range good {
		if !ValidToken(s) {
			t.Errorf("ValidToken(%q) = false", s)
		}
	}
	for _, s := range bad {
		if ValidToken(s) {
			t.Errorf("ValidToken(%q) = true", s)
		}
	}
}

func TestALPNIdentifier(t *testing.T) {
	cases := map[string]string{
		"Example.COM.":             "example.com",
		"1.0.0.127.in-addr.arpa":   "127.0.0.1",
		"1.0.0.in-addr.arpa":       "1.0.0.in-addr.arpa",
		"x.1.0.0.127.in-addr.arpa": "x.1.0.0.127.in-addr.arpa",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": "2001:db8::1",
	}
	for in, want := range cases {
		if got := ALPNIdentifier(in); got != want {
			t.Errorf("ALPNIdentifier(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestALPNCert: the validation certificate names the identifier and
// carries SHA-256(key authorization) in a critical acmeIdentifier
// extension (RFC 8737 §3).
func TestALPNCert(t *testing.T) {
	for _, id := range []string{"a.example.test", "127.0.0.1"} {
		c, err := ALPNCert(id, "token.thumb")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		names := append(leaf.DNSNames, func() (s []string) {
			for _, ip := range leaf.IPAddresses {
				s = append(s, ip.String())
			}
			return
		}()...)
		if len(names) != 1 || names[0] != id {
			t.Errorf("%s: names %v", id, names)
		}
		sum := sha256.Sum256([]byte("token.thumb"))
		found := false
		for _, e := range leaf.Extensions {
			if e.Id.Equal(idPeAcmeIdentifier) {
				var got []byte
				if _, err := asn1.Unmarshal(e.Value, &got); err != nil || !bytes.Equal(got, sum[:]) || !e.Critical {
					t.Errorf("%s: acmeIdentifier = %x critical=%v err=%v", id, got, e.Critical, err)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no acmeIdentifier extension", id)
		}
	}
}
