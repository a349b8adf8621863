package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChallengeDirKey: the top-level challenge_dir is resolved against the
// config's directory and must name an existing directory; a mistake is
// reported at its line.
func TestChallengeDirKey(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.dir, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := f.mustParse(t, "challenge_dir = \"acme\"\n")
	if want := filepath.Join(f.dir, "acme"); c.ChallengeDir != want {
		t.Errorf("ChallengeDir = %q, want %q", c.ChallengeDir, want)
	}
	if !strings.Contains(c.Summary(), "http-01 answers also from files in "+filepath.Join(f.dir, "acme")) {
		t.Errorf("summary does not name the challenge directory:\n%s", c.Summary())
	}
	for text, want := range map[string]string{
		"email = \"a@example.com\"\nchallenge_dir = \"nope\"\n":       "tlspilot.toml:2: challenge_dir: " + f.dir + "/nope does not exist",
		"challenge_dir = \"site.pem\"\n":                              "tlspilot.toml:1: challenge_dir: " + f.dir + "/site.pem is not a directory",
		"challenge_dir = \"\"\n":                                      "tlspilot.toml:1: challenge_dir: empty path",
		"challenge_dir = 3\n":                                         "tlspilot.toml:1: challenge_dir",
		"[[site]]\nnames = \"a.example\"\nchallenge_dir = \"acme\"\n": "tlspilot.toml:3: site[1].challenge_dir: unknown key",
	} {
		_, err := f.parse(t, text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

// TestCertFilesNotYetWritten: cert_file and key_file may name files that
// do not exist yet (serve presents a temporary certificate until another
// process writes them), as long as both keys are there; files that
// exist are still checked.
func TestCertFilesNotYetWritten(t *testing.T) {
	f := newFixture(t)
	for name, files := range map[string]string{
		"neither":        "cert_file = \"live/fullchain.pem\"\nkey_file = \"live/privkey.pem\"\n",
		"no key yet":     "cert_file = \"site.pem\"\nkey_file = \"live/privkey.pem\"\n",
		"no cert yet":    "cert_file = \"live/fullchain.pem\"\nkey_file = \"site.key\"\n",
		"absolute paths": "cert_file = \"$DIR/live/fullchain.pem\"\nkey_file = \"$DIR/live/privkey.pem\"\n",
	} {
		c, err := f.parse(t, "[[site]]\nnames = \"late.example\"\n"+files)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s := c.Sites[0]
		if !s.CertFilesMissing || !filepath.IsAbs(s.CertFile) || !filepath.IsAbs(s.KeyFile) {
			t.Errorf("%s: %+v", name, s)
		}
		if !strings.Contains(c.Summary(), "not there yet: serve presents a temporary self-signed certificate") {
			t.Errorf("%s: summary does not say the files are missing:\n%s", name, c.Summary())
		}
	}
	c := f.mustParse(t, "[[site]]\nnames = \"example.com\"\ncert_file = \"site.pem\"\nkey_file = \"site.key\"\n")
	if c.Sites[0].CertFilesMissing {
		t.Error("existing files reported missing")
	}
	for text, want := range map[string]string{
		"cert_file = \"site.key\"\nkey_file = \"site.key\"\n": "tlspilot.toml:3: site[1].cert_file: " + f.dir + "/site.key, " + f.dir + "/site.key:",
		"cert_file = \"www\"\nkey_file = \"site.key\"\n":      "tlspilot.toml:3: site[1].cert_file: " + f.dir + "/www is not a regular file",
		"cert_file = \"\"\nkey_file = \"live/k.pem\"\n":       "tlspilot.toml:3: site[1].cert_file: empty path",
	} {
		_, err := f.parse(t, "[[site]]\nnames = \"example.com\"\n"+text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
