package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIssuerCheckTSIGSecretNotBase64: check refuses an issuer's config
// whose tsig_secret_file does not hold a base64 secret, as init and the
// issuer do, naming the tsig_secret_file line (not dns.provider).
func TestIssuerCheckTSIGSecretNotBase64(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secret, []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, `email = "ops@example.com"
agree_terms = true
storage = "`+filepath.Join(dir, "storage")+`"
issuer_listen = "127.0.0.1:8443"
issuer_names = ["issuer.example.com"]

[dns]
provider = "rfc2136"
server = "127.0.0.1:53"
tsig_key = "tlspilot."
tsig_secret_file = "`+secret+`"
`)
	code, out, errOut := runCLI(t, "check", "--config", conf)
	want := conf + ":11: dns.tsig_secret_file: secret file " + secret + ": secret is not base64"
	if code != 1 || !strings.Contains(out+errOut, want) || strings.Contains(out+errOut, "dns.provider") {
		t.Errorf("check: exit %d, want %q\n%s%s", code, want, out, errOut)
	}
}
