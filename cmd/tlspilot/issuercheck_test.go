package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/config"
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

// TestIssuerSetup: the digest the issuer records with a failed order
// changes with the CA, the [dns] settings and the TSIG secret's content,
// and only with them: a failure is retried at once after such a change
// (the operator's fix), never after a restart alone.
func TestIssuerSetup(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "tsig.secret")
	writeFile(t, secret, "c2VjcmV0\n")
	cfg := &config.Config{CA: "https://ca.example.test/dir", DNS: &config.DNS{Provider: "rfc2136", Server: "127.0.0.1:53",
		TSIGKey: "k", TSIGSecretFile: secret}}
	base := issuerSetup(cfg)
	if issuerSetup(cfg) != base {
		t.Fatal("the same settings give another digest")
	}
	writeFile(t, secret, "b3RoZXI=\n")
	if issuerSetup(cfg) == base {
		t.Error("a new TSIG secret gives the same digest")
	}
	writeFile(t, secret, "c2VjcmV0\n")
	other := *cfg
	other.CA = "https://other.example.test/dir"
	dns := *cfg.DNS
	dns.Server = "127.0.0.2:53"
	moved := *cfg
	moved.DNS = &dns
	if issuerSetup(&other) == base || issuerSetup(&moved) == base {
		t.Error("another CA or DNS server gives the same digest")
	}
}
