package main

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestStorageOwner: commands run as root on a storage another user owns
// (serve's `user`) write it as that user, or refuse when the config does
// not name that user; nothing root-owned is left for the owner's daemon
// to trip over. The test runs as root (CI and these machines do).
func TestStorageOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks what commands run as root do to another user's storage")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	e := newEnv(t)
	// nobody must reach its storage and read the CA's root in e.dir.
	for _, d := range []string{filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	storage := filepath.Join(e.dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(storage, uid, gid); err != nil {
		t.Fatal(err)
	}
	site := "\n[[site]]\nnames = [\"owner.example.test\"]\nroot = " + strconvQuote(filepath.Join(e.dir, "www")) + "\n"
	certsConf := filepath.Join(e.dir, "certs.toml")
	write(t, certsConf, readFile(t, e.config("\n[[certificate]]\nnames = [\"c.example.test\"]\nfullchain = "+
		strconvQuote(filepath.Join(e.dir, "fc.pem"))+"\nprivkey = "+strconvQuote(filepath.Join(e.dir, "pk.pem"))+"\n")))
	conf := e.config(site)

	// Without `user`: refused, naming the owner, and nothing written.
	for _, args := range [][]string{
		{"renew", "--force", "--config", conf, "owner.example.test"},
		{"revoke", "--config", conf, "owner.example.test"},
		{"clean", "--config", conf},
		{"certs", "--once", "--config", certsConf},
	} {
		code, out, errOut := runBinary(t, args...)
		if code == 0 || !strings.Contains(errOut, "belongs to user nobody") || !strings.Contains(errOut, "sudo -u nobody tlspilot "+args[0]) {
			t.Errorf("tlspilot %s as root on nobody's storage: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
	if n := countEntries(t, storage); n != 0 {
		t.Errorf("%d files in the storage after refused commands, want none", n)
	}

	// With user = "nobody": renew runs as nobody; everything it writes
	// is nobody's.
	conf = e.config("user = \"nobody\"\n" + site)
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf, "owner.example.test"); code != 0 {
		t.Fatalf("renew as root with user = nobody: exit %d\n%s%s", code, out, errOut)
	}
	n := 0
	err = filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, want nobody (%d)", path, st.Uid, uid)
		}
		n++
		return nil
	})
	if err != nil || n < 5 {
		t.Errorf("storage after renew: %d entries, error %v", n, err)
	}
}

// countEntries counts the files and folders below dir.
func countEntries(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// strconvQuote quotes s as a TOML basic string.
func strconvQuote(s string) string { return strconv.Quote(s) }
