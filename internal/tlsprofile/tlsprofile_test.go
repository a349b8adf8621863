package tlsprofile

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Profile{"": Intermediate, "intermediate": Intermediate, "modern": Modern} {
		if p, err := Parse(in); err != nil || p != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, p, err, want)
		}
	}
	for _, in := range []string{"old", "Modern", "strict"} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), "modern") {
			t.Errorf("Parse(%q): %v, want an error naming the choices", in, err)
		}
	}
}

// TestSuitesAreAEADWithECDHE: the intermediate list holds only ECDHE
// suites with an AEAD, all of them secure by crypto/tls's own account.
func TestSuitesAreAEADWithECDHE(t *testing.T) {
	secure := map[uint16]string{}
	for _, s := range tls.CipherSuites() {
		secure[s.ID] = s.Name
	}
	for _, id := range Intermediate.CipherSuites() {
		name, ok := secure[id]
		if !ok {
			t.Errorf("suite %#04x is not among crypto/tls's secure suites", id)
			continue
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with an AEAD", name)
		}
	}
	if len(Intermediate.CipherSuites()) != 6 || Modern.CipherSuites() != nil {
		t.Errorf("intermediate has %d TLS 1.2 suites (want 6), modern %d (want none)",
			len(Intermediate.CipherSuites()), len(Modern.CipherSuites()))
	}
}
