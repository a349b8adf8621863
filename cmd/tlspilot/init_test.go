package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestInit: `tlspilot init` creates the storage, the KEK and the ACME
// account (registered with Pebble, no order placed) and says how to hand
// the storage to the user certs runs as; run again it keeps both, byte
// for byte, and says so.
func TestInit(t *testing.T) {
	e := newEnv(t)
	conf := e.config("")
	storage := filepath.Join(e.dir, "storage")

	code, out, errOut := runBinary(t, "init", "--config", conf)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("init:\n%s", out)
	for _, want := range []string{
		"key-encryption key " + filepath.Join(storage, "kek") + ": created",
		"ACME account at " + e.p.DirectoryURL + ": registered https://",
		"tlspilot init --config " + conf + " --user USER",
		"chown root:GROUP " + filepath.Join(storage, "kek"),
		"chmod 0440 " + filepath.Join(storage, "kek"),
		"chmod 1770 " + filepath.Join(storage, "data"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q", want)
		}
	}
	if n := e.p.RequestsTo("/order-plz"); n != 0 {
		t.Errorf("init placed %d orders, want none", n)
	}
	before := readTree(t, storage)
	if len(before) < 3 {
		t.Fatalf("storage after init: %v", before)
	}

	code, out2, errOut := runBinary(t, "init", "--config", conf)
	if code != 0 {
		t.Fatalf("second init: exit %d\n%s%s", code, out2, errOut)
	}
	for _, want := range []string{"key-encryption key " + filepath.Join(storage, "kek") + ": exists, kept", "exists, valid at the CA, kept"} {
		if !strings.Contains(out2, want) {
			t.Errorf("second init output lacks %q:\n%s", want, out2)
		}
	}
	after := readTree(t, storage)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed by the second init", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("second init left %d files, the first %d", len(after), len(before))
	}
}

// TestInitUsage: a user to hand over to needs root, and --group needs
// --user.
func TestInitUsage(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "tlspilot.toml")
	write(t, conf, "[[site]]\nnames = [\"a.example.test\"]\n")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--config", conf, "--group", "0"}, "--group needs --user"},
		{[]string{"init", "--config", conf, "extra"}, `unexpected argument "extra"`},
		{[]string{"init", "--config", conf, "--user", "no-such-user-here"}, "--user: "},
	} {
		code, _, errOut := runBinary(t, tt.args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tt.args, code, errOut, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(conf), "storage")); err == nil {
		t.Error("a refused init created a storage")
	}
}

// readTree returns the files below dir and their contents.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInitEAB: with a CA that requires external account binding, init
// registers the account with the config's EAB key, and without it fails
// saying what the CA requires, creating no account. A key written with
// base64 padding, as some CAs hand it out (Google), works too: it failed
// to decode at registration.
func TestInitEAB(t *testing.T) {
	const kid, hmac = "kid-init", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	padKey := []byte("0123456789abcdef0123456789abcde+") // 32 bytes: padded in base64
	const padKID = "kid-padded"
	e := newEnvWith(t, testenv.PebbleOptions{EAB: map[string]string{kid: hmac, padKID: base64.RawURLEncoding.EncodeToString(padKey)}})
	write(t, filepath.Join(e.dir, "eab.hmac"), hmac+"\n")
	conf := e.config("")
	code, out, errOut := runBinary(t, "init", "--config", conf)
	if code == 0 || !strings.Contains(errOut, "external account binding") {
		t.Errorf("init without EAB: exit %d, want an error about external account binding\n%s%s", code, out, errOut)
	}
	t.Logf("init without EAB: %s", strings.TrimSpace(errOut))
	if accts, _ := filepath.Glob(filepath.Join(e.dir, "storage", "data", "accounts", "*", "*", "account.json")); len(accts) != 0 {
		t.Errorf("a refused registration left account records: %v", accts)
	}
	conf = e.config(fmt.Sprintf("eab_key_id = %q\neab_hmac_file = %q\n", kid, filepath.Join(e.dir, "eab.hmac")))
	code, out, errOut = runBinary(t, "init", "--config", conf)
	if code != 0 || !strings.Contains(out, "registered https://") {
		t.Fatalf("init with EAB: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("init with EAB:\n%s", out)

	padded := base64.URLEncoding.EncodeToString(padKey)
	if !strings.HasSuffix(padded, "=") {
		t.Fatalf("key %q has no padding", padded)
	}
	write(t, filepath.Join(e.dir, "eab-padded.hmac"), padded+"\n")
	if err := os.RemoveAll(filepath.Join(e.dir, "storage")); err != nil { // a new account
		t.Fatal(err)
	}
	conf = e.config(fmt.Sprintf("eab_key_id = %q\neab_hmac_file = %q\n", padKID, filepath.Join(e.dir, "eab-padded.hmac")))
	if code, out, errOut := runBinary(t, "init", "--config", conf); code != 0 || !strings.Contains(out, "registered https://") {
		t.Fatalf("init with a padded EAB key: exit %d\n%s%s", code, out, errOut)
	}
}
