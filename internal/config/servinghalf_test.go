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
