package config

import (
	"strings"
	"testing"
)

// TestTopKeyAfterDNS: the "top-level key written after a header" hint
// covers every top-level key, also those the decoder reads after [dns]
// (tls_profile, max_connections). Found by review: [dns]'s unknown keys
// were reported before those were read, so they got a bare "unknown key".
func TestTopKeyAfterDNS(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{"tls_profile = \"modern\"", "max_connections = 100"} {
		_, err := f.parse(t, "[dns]\nprovider = \"exec\"\ncommand = \"/bin/true\"\n"+k+"\n")
		key := strings.Fields(k)[0]
		if err == nil || !strings.Contains(err.Error(), key+" is a top-level key") {
			t.Errorf("%s after [dns]: %v, want the top-level key hint", key, err)
		}
	}
}

// TestPublicCAWarningsSpecialPurposeIPs: PublicCAWarnings covers the IANA
// special-purpose ranges Let's Encrypt refuses, beyond the private ones:
// documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), benchmarking (198.18.0.0/15), 240.0.0.0/4 and the
// broadcast address. Found by review.
func TestPublicCAWarningsSpecialPurposeIPs(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `ca = "letsencrypt"
agree_terms = true

[[site]]
names = ["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "198.18.0.1", "240.0.0.1", "255.255.255.255"]
`)
	got := strings.Join(c.PublicCAWarnings(), "\n")
	for _, ip := range []string{"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "198.18.0.1", "240.0.0.1", "255.255.255.255"} {
		if !strings.Contains(got, ip+": Let's Encrypt does not issue") {
			t.Errorf("no warning for %s", ip)
		}
	}
}
