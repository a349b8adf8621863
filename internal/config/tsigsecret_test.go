package config

import (
	"strings"
	"testing"
)

// TestTSIGSecretNotBase64: a tsig_secret_file or tsig_secret_env whose
// content is not a base64 secret is refused when the config is read (by
// check too), at its own line, as the rfc2136 provider would refuse it
// at start; a BIND key clause is accepted, as the provider reads it.
func TestTSIGSecretNotBase64(t *testing.T) {
	f := newFixture(t)
	f.write(t, "bad.secret", "not base64!\n", 0o600)
	f.write(t, "clause.secret", `key "tlspilot." { algorithm hmac-sha256; secret "c2VjcmV0Cg=="; };`+"\n", 0o600)
	t.Setenv("TLSPILOT_BAD_TSIG", "not base64!")
	head := "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:53\"\ntsig_key = \"k.\"\n"
	for _, b := range []struct{ text, want string }{
		{head + "tsig_secret_file = \"bad.secret\"\n", "tlspilot.toml:5: dns.tsig_secret_file: secret file " + f.dir + "/bad.secret: secret is not base64"},
		{head + "tsig_secret_env = \"TLSPILOT_BAD_TSIG\"\n", "tlspilot.toml:5: dns.tsig_secret_env: secret in environment variable TLSPILOT_BAD_TSIG: secret is not base64"},
	} {
		_, err := f.parse(t, b.text)
		if err == nil || !strings.Contains(err.Error(), b.want) || strings.Contains(err.Error(), "dns.provider") {
			t.Errorf("config %q: %v, want %q", b.text, err, b.want)
		}
	}
	named := strings.Replace(head, `tsig_key = "k."`, `tsig_key = "tlspilot."`, 1)
	f.mustParse(t, named+"tsig_secret_file = \"clause.secret\"\n")
}

// TestTSIGKeyClauseChosen: a secret file of BIND key clauses is read for
// the clause tsig_key names, whose algorithm is used when tsig_algorithm
// is not set; a file without that clause, or whose clause has another
// algorithm than tsig_algorithm, is refused at the tsig_secret_file line
// (check said OK, and start-up or every update failed).
func TestTSIGKeyClauseChosen(t *testing.T) {
	f := newFixture(t)
	f.write(t, "keys.secret", `key "a." { algorithm hmac-sha256; secret "c2VjcmV0Cg=="; };
key "b." { algorithm hmac-sha512; secret "b3RoZXIK"; };
`, 0o600)
	head := "[dns]\nprovider = \"rfc2136\"\nserver = \"127.0.0.1:53\"\n"
	c := f.mustParse(t, head+"tsig_key = \"b.\"\ntsig_secret_file = \"keys.secret\"\n")
	if c.DNS.TSIGAlgorithm != HMACSHA512 {
		t.Errorf("algorithm %q, want the clause's %s", c.DNS.TSIGAlgorithm, HMACSHA512)
	}
	for _, b := range []struct{ text, want string }{
		{head + "tsig_key = \"c.\"\ntsig_secret_file = \"keys.secret\"\n", "tlspilot.toml:5: dns.tsig_secret_file: "},
		{head + "tsig_key = \"b.\"\ntsig_algorithm = \"hmac-sha256\"\ntsig_secret_file = \"keys.secret\"\n", "tlspilot.toml:6: dns.tsig_secret_file: "},
	} {
		if _, err := f.parse(t, b.text); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("config %q: %v, want an error at %q", b.text, err, b.want)
		}
	}
}
