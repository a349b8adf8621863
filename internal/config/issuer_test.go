package config

import (
	"slices"
	"strings"
	"testing"
)

// TestIssuerKeys checks issuer_listen and issuer_names: accepted and
// normalised together, absent by default, and every refusal with its
// file:line: key.
func TestIssuerKeys(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, "issuer_listen = \":8443\"\nissuer_names = [\"Issuer.Example.com.\", \"192.0.2.10\"]")
	if !c.IsIssuer() || c.IssuerListen != ":8443" || !slices.Equal(c.IssuerNames, []string{"issuer.example.com", "192.0.2.10"}) {
		t.Errorf("IssuerListen %q, IssuerNames %q", c.IssuerListen, c.IssuerNames)
	}
	if want := "fleet issuer: API on :8443 for issuer.example.com, 192.0.2.10 (tlspilot issuer)\n"; !strings.Contains(c.Summary(), want) {
		t.Errorf("summary lacks %q:\n%s", want, c.Summary())
	}
	if c := f.mustParse(t, ``); c.IsIssuer() || strings.Contains(c.Summary(), "fleet issuer") || c.IssuerNames != nil {
		t.Errorf("default: issuer %v, names %q", c.IsIssuer(), c.IssuerNames)
	}
	refused := []struct{ name, config, want string }{
		{"listen without names", `issuer_listen = ":8443"`, `tlspilot.toml:1: issuer_listen: needs issuer_names`},
		{"names without listen", `issuer_names = "issuer.example.com"`, `tlspilot.toml:1: issuer_names: needs issuer_listen`},
		{"bad listen", "issuer_listen = \"8443\"\nissuer_names = \"issuer.example.com\"", `tlspilot.toml:1: issuer_listen: "8443": want host:port`},
		{"no names", "issuer_listen = \":8443\"\nissuer_names = []", `tlspilot.toml:2: issuer_names: at least one name is needed`},
		{"wildcard", "issuer_listen = \":8443\"\nissuer_names = [\"*.example.com\"]", `tlspilot.toml:2: issuer_names[1]: "*.example.com": the issuer's certificate names the issuer itself`},
		{"URL", "issuer_listen = \":8443\"\nissuer_names = [\"https://issuer.example.com\"]", `tlspilot.toml:2: issuer_names[1]: "https://issuer.example.com" is a URL`},
		{"twice", "issuer_listen = \":8443\"\nissuer_names = [\"a.example.com\", \"A.example.com\"]", `tlspilot.toml:2: issuer_names[2]: "a.example.com" is listed twice`},
		{"not qualified", "issuer_listen = \":8443\"\nissuer_names = \"issuer\"", `tlspilot.toml:2: issuer_names: `},
		{"misspelt", `issuer_lisen = ":8443"`, `tlspilot.toml:1: issuer_lisen: unknown key (did you mean "issuer_listen"?)`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
