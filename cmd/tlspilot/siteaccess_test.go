package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSiteAccess: check refuses, at the key's line, a site root
// (or a route's) and a key file that the user serve runs as cannot
// read: serve opens them after dropping its privileges, and refused the
// config that check, run as root, had called OK. serve's own refusal
// names the site's line and key (it said "site 0 (name)", with no line).
func TestCheckSiteAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: serve changes user only when started as root")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	private, public := filepath.Join(dir, "private"), filepath.Join(dir, "public")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(public, 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "k.pem")
	write(t, key, "not read by check")
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	head := "user = \"nobody\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n" +
		"storage = " + strconvQuote(filepath.Join(dir, "storage")) + "\n"
	site := func(root string) string {
		return "\n[[site]]\nnames = [\"access.example.test\"]\nroot = " + strconvQuote(root) + "\n" +
			"cert_file = " + strconvQuote(filepath.Join(dir, "missing.pem")) + "\nkey_file = " + strconvQuote(filepath.Join(dir, "missing-key.pem")) + "\n"
	}
	write(t, conf, head+site(private))
	code, out, errOut := runBinary(t, "check", conf)
	if code == 0 || !strings.Contains(errOut, "tlspilot.toml:9: site[1].root: permission denied: "+private) || !strings.Contains(errOut, `serve runs as user "nobody"`) {
		t.Errorf("check with a root nobody cannot read: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinary(t, "serve", "-c", conf)
	if code == 0 || !strings.Contains(errOut, "tlspilot.toml:7: site[1]: access.example.test: root") || !strings.Contains(errOut, "permission denied") {
		t.Errorf("serve with a root nobody cannot read: exit %d\n%s%s", code, out, errOut)
	}

	route := head + site(public) + "\n[[site.route]]\npath = \"/p/\"\nroot = " + strconvQuote(private) + "\n"
	write(t, conf, route)
	if code, out, errOut := runBinary(t, "check", conf); code == 0 || !strings.Contains(errOut, "tlspilot.toml:15: site[1].route[1].root: permission denied") {
		t.Errorf("check with a route root nobody cannot read: exit %d\n%s%s", code, out, errOut)
	}

	keyed := strings.Replace(head+site(public), strconvQuote(filepath.Join(dir, "missing-key.pem")), strconvQuote(key), 1)
	write(t, conf, keyed)
	if code, out, errOut := runBinary(t, "check", conf); code == 0 || !strings.Contains(errOut, "tlspilot.toml:11: site[1].key_file: permission denied: "+key) {
		t.Errorf("check with a key file nobody cannot read: exit %d\n%s%s", code, out, errOut)
	}

	write(t, conf, head+site(public))
	if code, out, errOut := runBinary(t, "check", conf); code != 0 {
		t.Errorf("check with a root nobody can read: exit %d\n%s%s", code, out, errOut)
	}
}
