package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIHelpAndVersion(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "tlspilot ") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"serve", "--help"}, {"check", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t); code != 2 {
		t.Errorf("no command: %d", code)
	}
}

// TestCheck: check prints what would be served, and refuses bad configs
// with the file, line and key, exit 1, starting nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	good := "agree_terms = true\nstorage = \"" + dir + "/s\"\n[[site]]\nnames = [\"example.com\", \"www.example.com\"]\nroot = \"" + www + "\"\n"
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, good)
	code, out, errOut := runCLI(t, "check", "--config", path)
	if code != 0 || !strings.Contains(out, "example.com") || !strings.Contains(out, "OK") {
		t.Errorf("good config: %d %q %q", code, out, errOut)
	}
	bad := []struct{ conf, want string }{
		{good + "[[site]]\nnames = [\"b.example\"]\nroots = \"/x\"\n", "tlspilot.toml:8: site[2].roots: unknown key"},
		{"emial = \"a@b.c\"\n", "tlspilot.toml:1: emial: unknown key"},
		{"agree_terms = \"yes\"\n", "tlspilot.toml:1: agree_terms"},
		{"ca = \"http://insecure.example/dir\"\n", "tlspilot.toml:1: ca"},
		{"key_type = \"dsa\"\n", "tlspilot.toml:1: key_type"},
		{"challenge = \"http-02\"\n", "tlspilot.toml:1: challenge"},
		{"[[site]]\nnames = [\"a.example\"]\nproxy = \"ftp://x\"\n", "tlspilot.toml:3: site[1].proxy"},
		{"[[site]]\nnames = [\"a.example\"]\nroot = \"/does/not/exist\"\n", "tlspilot.toml:3: site[1].root"},
		{"[[site]]\nnames = [\"a.example\"]\n[[site]]\nnames = [\"A.example\"]\n", "site[2].names"},
		{"[[site]]\nnames = [\"*.a.example\"]\n", "site[1].names"},
		{"[[site]]\nnames = []\n", "site[1].names"},
		{"http_listen = \"nonsense\"\n", "tlspilot.toml:1: http_listen"},
		{"[[site]]\nnames = [\"a.example\"]\ncert_file = \"/etc/x.pem\"\n", "site[1]"},
		{"[dns]\nprovider = \"carrier-pigeon\"\n", "dns.provider"},
	}
	for _, b := range bad {
		writeFile(t, path, b.conf)
		code, out, errOut := runCLI(t, "check", "--config", path)
		if code != 1 || !strings.Contains(errOut, b.want) || out != "" {
			t.Errorf("config %q: exit %d, stderr %q, stdout %q; want exit 1 and %q", b.conf, code, errOut, out, b.want)
		}
	}
}

// TestServeRefusesBusyPort: a port that cannot be bound is reported at
// the config line of the address, and nothing is started.
func TestServeRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, "storage = \""+dir+"/s\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \""+l.Addr().String()+"\"\n[[site]]\nnames = [\"a.example\"]\n")
	code, _, errOut := runCLI(t, "serve", "--config", path)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:3: https_listen: cannot listen on") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "s")); err == nil {
		t.Error("storage was created although serve did not start")
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCommandHelpOnce: COMMAND --help prints the command's help once, on
// stdout; a bad flag prints the complaint on stderr only.
func TestCommandHelpOnce(t *testing.T) {
	for _, cmd := range []string{"status", "renew", "revoke"} {
		code, out, errOut := runCLI(t, cmd, "--help")
		if code != 0 || strings.Count(out, "Usage: tlspilot "+cmd) != 1 || errOut != "" {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
		code, out, errOut = runCLI(t, cmd, "--bogus")
		want := 2
		if cmd == "status" {
			want = 3 // a Nagios plugin's UNKNOWN (TestTrialStatusUsageIsUnknown)
		}
		if code != want || out != "" || !strings.Contains(errOut, "bogus") {
			t.Errorf("%s --bogus: exit %d, stdout %q, stderr %q; want exit %d", cmd, code, out, errOut, want)
		}
	}
}
