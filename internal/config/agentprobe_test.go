package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestIsAgentFile: a file with a top-level issuer key is an agent's
// config; the issuer's own config (issuer_listen), a [[certificate]]
// table's keys, a malformed or missing file are not.
func TestIsAgentFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"agent.toml", "issuer = \"https://issuer.example.com:8443\"\nstorage = \"/var/lib/a\"\n", true},
		{"issuer.toml", "ca = \"letsencrypt\"\nissuer_listen = \":8443\"\nissuer_names = [\"issuer.example.com\"]\n", false},
		{"nested.toml", "[[certificate]]\nissuer = \"x\"\n", false},
		{"broken.toml", "issuer = \n", false},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := IsAgentFile(p); got != tc.want {
			t.Errorf("%s: IsAgentFile = %v, want %v", tc.name, got, tc.want)
		}
	}
	if IsAgentFile(filepath.Join(dir, "missing.toml")) {
		t.Error("a missing file is an agent's config")
	}
}
