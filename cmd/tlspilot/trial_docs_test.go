package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot"
)

// TestTrialStatusUsageIsUnknown: docs/status.md says status's exit code
// is a Nagios plugin's, and the plugin guidelines make invalid arguments
// UNKNOWN (3). A mistyped flag or a second -c in a check command exited 2,
// which Nagios reads as CRITICAL (a certificate expired) and pages for.
// Help still exits 0.
func TestTrialStatusUsageIsUnknown(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	body := "ca = \"https://127.0.0.1:14000/dir\"\nstorage = \"" + filepath.Join(dir, "storage") + "\"\n\n[[site]]\nnames = [\"a.example.test\"]\nroot = \"" + dir + "\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "-c", conf, "--bogus"},
		{"status", "-c", conf, "-c", conf},
		{"status", "--json=maybe", "-c", conf},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != tlspilot.ExitUnknown || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want %d (UNKNOWN) and the complaint", args, code, errOut, tlspilot.ExitUnknown)
		}
	}
	if code, out, _ := runCLI(t, "status", "--help"); code != 0 || !strings.Contains(out, "Usage") {
		t.Errorf("status --help: exit %d, stdout %q", code, out)
	}
}

// TestTrialRevokeCreatesNoStorage: revoke only revokes what is stored.
// On a config whose storage directory does not exist (nothing obtained
// yet, or a storage path mistyped) it made the directory and a new
// key-encryption key, owned by whoever ran it (root, typically, after
// which serve with user refuses the storage), and then said there was no
// certificate. It must say so and create nothing, for a configured name
// and for another alike.
func TestTrialRevokeCreatesNoStorage(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	conf := filepath.Join(dir, "tlspilot.toml")
	body := "ca = \"https://127.0.0.1:14000/dir\"\nstorage = \"" + storage + "\"\n\n[[site]]\nnames = [\"a.example.test\"]\nroot = \"" + dir + "\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.example.test", "other.example.test"} {
		code, out, errOut := runCLI(t, "revoke", "-c", conf, name)
		if code != 1 || !strings.Contains(errOut, "no certificate") || !strings.Contains(errOut, storage) {
			t.Errorf("revoke %s: exit %d, stdout %q, stderr %q; want 1, no certificate, naming the storage", name, code, out, errOut)
		}
		if _, err := os.Lstat(storage); err == nil {
			t.Fatalf("revoke %s created the storage %s", name, storage)
		}
	}
}
