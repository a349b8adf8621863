package certstore

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/keys"
)

var keySegment = regexp.MustCompile(`^[a-z0-9._-]+$`)

// TestIDs: identifiers are valid storage key segments whatever the
// names, stable under reordering, and distinct per names and key type.
func TestIDs(t *testing.T) {
	names := [][]string{
		{"example.com", "www.example.com"},
		{"*.example.com"},
		{"2001:db8::1"},
		{"127.0.0.1"},
		{"xn--bcher-kva.example"},
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".example"},
		{"..."},
	}
	seen := map[string]bool{}
	for _, n := range names {
		for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA2048} {
			id := CertID(n, kt)
			if !keySegment.MatchString(id) || strings.HasPrefix(id, ".") || len(id) > 100 {
				t.Errorf("CertID(%v, %s) = %q: not a valid key segment", n, kt, id)
			}
			if seen[id] {
				t.Errorf("CertID(%v, %s) = %q collides", n, kt, id)
			}
			seen[id] = true
		}
	}
	if CertID([]string{"a.example", "b.example"}, keys.ECDSAP256) != CertID([]string{"b.example", "a.example"}, keys.ECDSAP256) {
		t.Error("CertID depends on the order of names")
	}
	for _, d := range []string{"https://acme-v02.api.letsencrypt.org/directory", "https://127.0.0.1:14000/dir", "::bad"} {
		if id := CAID(d); !keySegment.MatchString(id) {
			t.Errorf("CAID(%q) = %q", d, id)
		}
	}
	if CAID("https://a.example/dir") == CAID("https://a.example/other") {
		t.Error("CAID does not tell directories apart")
	}
}
