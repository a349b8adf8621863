package config

import (
	"strings"
	"testing"
)

// TestTSIGSecretEnv: the TSIG secret may come from an environment
// variable named in the config instead of a file, but not from both, and
// the variable must be set.
func TestTSIGSecretEnv(t *testing.T) {
	f := newFixture(t)
	t.Setenv("TLSPILOT_TSIG", "c2VjcmV0Cg==")
	head := "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:53\"\ntsig_key = \"k.\"\n"
	c := f.mustParse(t, head+"tsig_secret_env = \"TLSPILOT_TSIG\"\n")
	if c.DNS.TSIGSecretEnv != "TLSPILOT_TSIG" || c.DNS.TSIGSecretFile != "" {
		t.Errorf("DNS = %+v", c.DNS)
	}
	bad := []struct{ text, want string }{
		{head + "tsig_secret_env = \"TLSPILOT_UNSET_VARIABLE\"\n", `tlspilot.toml:5: dns.tsig_secret_env: environment variable "TLSPILOT_UNSET_VARIABLE" is not set`},
		{head + "tsig_secret_env = \"TLSPILOT_TSIG\"\ntsig_secret_file = \"tsig.secret\"\n", "dns.tsig_secret_env: give tsig_secret_file or tsig_secret_env, not both"},
		{head, "dns.tsig_secret_file: required by the rfc2136 provider (or tsig_secret_env)"},
		{"[dns]\nprovider = \"exec\"\ncommand = \"/bin/true\"\ntsig_secret_env = \"TLSPILOT_TSIG\"\n", "tlspilot.toml:4: dns.tsig_secret_env: not used by the exec provider"},
	}
	for _, b := range bad {
		_, err := f.parse(t, b.text)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("config %q: %v, want %q", b.text, err, b.want)
		}
	}
}
