package fsstore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is the unprivileged user the access tests run their child as.
const nobody = 65534

// TestCheckWrite: run as an unprivileged user, CheckWrite allows what
// that user may replace (its own values, new values in its own folders)
// and refuses, naming the path and the permission, a value an
// administrator made read-only to it and new values in the
// administrator's folder. It needs root to give files away and to start
// the child as another user; anywhere else it fails, since it cannot show
// what it is meant to.
func TestCheckWrite(t *testing.T) {
	if dir := os.Getenv("FSSTORE_CHECKWRITE_DIR"); dir != "" {
		checkWriteChild(t, dir)
		return
	}
	dir, s := rootStore(t, "fsstore-access-")
	ctx := context.Background()
	for _, k := range []string{"accounts/a/key", "certs/b/cert.json"} {
		if err := s.Store(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// The child's storage, but accounts/ stays root's, read-only to it.
	for _, p := range []string{dir, s.dataDir, s.lockDir, filepath.Join(s.dataDir, "certs"), filepath.Join(s.dataDir, "certs", "b"),
		filepath.Join(s.dataDir, "certs", "b", "cert.json")} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	for p, mode := range map[string]fs.FileMode{filepath.Join(s.dataDir, "accounts"): 0o755,
		filepath.Join(s.dataDir, "accounts", "a"): 0o755, filepath.Join(s.dataDir, "accounts", "a", "key"): 0o444} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	runAsNobody(t, dir, "TestCheckWrite", "FSSTORE_CHECKWRITE_DIR")
}

// rootStore makes, as root, the temporary storage of a test whose other
// half runs as nobody (runAsNobody), removed at cleanup; it fails the
// test when not run as root, since it cannot show what it is meant to.
func rootStore(t *testing.T, prefix string) (string, *Store) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to run its child as another user")
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return dir, s
}

// runAsNobody runs the test named test again, as nobody, in a copy of
// the test binary in dir (the go tool's build directory is root's
// alone), with env set to dir; the child half must log "checked as uid
// 65534".
func runAsNobody(t *testing.T, dir, test, env string) {
	t.Helper()
	bin := filepath.Join(dir, "fsstore.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "checked as uid 65534") {
		t.Errorf("child as uid %d: %v\n%s", nobody, err, out)
	}
}

// checkWriteChild is TestCheckWrite's half that runs as nobody.
func checkWriteChild(t *testing.T, dir string) {
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"certs/b/cert.json", "certs/new/cert.json", "orders/x"} {
		if err := s.CheckWrite(ctx, k); err != nil {
			t.Errorf("CheckWrite(%s): %v, want nil", k, err)
		}
	}
	for _, tt := range []struct{ key, path, need string }{
		{"accounts/a/key", "accounts/a/key", "write permission on the file"},
		{"accounts/a/retired/1.key", "accounts/a", "write and search permission on the folder"},
	} {
		err := s.CheckWrite(ctx, tt.key)
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), filepath.Join(s.dataDir, tt.path)+":") ||
			!strings.Contains(err.Error(), tt.need) || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("CheckWrite(%s): %v; want a permission error naming %s and %q", tt.key, err, tt.path, tt.need)
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.dataDir, "accounts", "a", "key")); err != nil || string(b) != "x" {
		t.Errorf("account key now %q, %v", b, err)
	}
	t.Logf("checked as uid %d", os.Getuid())
}
