package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestReviewRealLayouts: the layouts deploy folders are reached through
// keep working with the folder walk: a chain of root's links, one
// relative with "..", as /var/run -> /run and a symlinked /etc/nginx/ssl
// make; and certbot's live/ folder, whose files are relative links into
// archive/: each is replaced by a regular file, archive/ is left as it
// is, and a second deploy changes nothing (no second reload).
func TestReviewRealLayouts(t *testing.T) {
	chain, key := testPEM(t, "a.example")
	t.Run("chain of root links", func(t *testing.T) {
		root := t.TempDir()
		mkdirs(t, root, "run/nginx", "var", "etc/nginx", "srv/tls")
		symlink(t, "../run", root, "var/run")                                   // relative, with ..
		symlink(t, filepath.Join(root, "var/run/nginx"), root, "etc/nginx/ssl") // absolute, through the relative one
		o := Options{Fullchain: filepath.Join(root, "etc/nginx/ssl/fullchain.pem"), Privkey: filepath.Join(root, "etc/nginx/ssl/privkey.pem")}
		f := newFiles(t, o)
		if !mustWrite(t, f, chain, key) || mustWrite(t, f, chain, key) {
			t.Error("want the first Write to change, the second not")
		}
		if _, err := os.Stat(filepath.Join(root, "run/nginx/privkey.pem")); err != nil {
			t.Errorf("the key is not where the links lead: %v", err)
		}
	})
	t.Run("certbot live", func(t *testing.T) {
		root := t.TempDir()
		mkdirs(t, root, "live/a.example", "archive/a.example")
		leaf, _, err := splitChain(chain)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"fullchain": chain, "privkey": key, "cert": leaf} {
			if err := os.WriteFile(filepath.Join(root, "archive/a.example", name+"1.pem"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			symlink(t, "../../archive/a.example/"+name+"1.pem", root, "live/a.example/"+name+".pem")
		}
		live := filepath.Join(root, "live/a.example")
		o := Options{Fullchain: filepath.Join(live, "fullchain.pem"), Privkey: filepath.Join(live, "privkey.pem"), Cert: filepath.Join(live, "cert.pem")}
		if os.Geteuid() == 0 {
			o.Group = "65534"
		}
		f := newFiles(t, o)
		before := victimState(t, filepath.Join(root, "archive/a.example/privkey1.pem"))
		mustWrite(t, f, chain, key) // the links are replaced, though their content is the same
		if mustWrite(t, f, chain, key) {
			t.Error("second Write changed files")
		}
		for _, p := range []string{o.Fullchain, o.Privkey, o.Cert} {
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s: %v, %v; want a regular file", p, fi, err)
			}
		}
		if after := victimState(t, filepath.Join(root, "archive/a.example/privkey1.pem")); after != before {
			t.Errorf("archive/ changed: %s, then %s", before, after)
		}
	})
	t.Run("pidfile with CRLF and spaces", func(t *testing.T) {
		cmd, done := sleeper(t, os.Geteuid())
		pidfile := filepath.Join(t.TempDir(), "app.pid")
		if err := os.WriteFile(pidfile, []byte(" "+strconv.Itoa(cmd.Process.Pid)+" \r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f := newFiles(t, Options{Privkey: "/x/k", Signal: syscall.SIGTERM, PIDFile: pidfile})
		if err := f.Reload(t.Context()); err != nil || !terminated(done) {
			t.Errorf("Reload: %v; want the process signalled", err)
		}
	})
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, root, name string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}
