package fsstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// chmodAll adds add to the mode of every file under dir and, plus
// search permission where add grants read, of every folder: as
// `chmod -R g+rX` (add 0o040) or `chmod -R a+rX` (0o044) would.
func chmodAll(t *testing.T, dir string, add fs.FileMode) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bits := add
		if d.IsDir() {
			bits |= add >> 2 // r → x
		}
		return os.Chmod(path, fi.Mode().Perm()|bits)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupReadKept: after `chmod -R g+rX` on the storage, the documented
// set-up that lets a monitoring user in the storage's group run `tlspilot
// status`, a value rewritten (as `tlspilot renew --force` rewrites
// state.json, cert.json and changes.json) stays group-readable, and new
// values and folders in group-readable folders are group-readable too.
// Private keys and lock files stay private to the owner, and nothing is
// ever given to others, not even after `chmod -R a+rX`.
func TestGroupReadKept(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 10*time.Second, true)
	ctx := t.Context()
	data := filepath.Join(dir, "data")
	shared := []string{"changes.json", "certs/a/cert.json", "certs/a/state.json", "accounts/ca/x/account.json"}
	private := []string{"accounts/ca/x/key", "accounts/ca/x/retired/1.key"}
	storeAll := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := s.Store(ctx, k, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
	}
	storeAll(append(shared, private...)...)
	for _, add := range []fs.FileMode{0o040, 0o044} {
		chmodAll(t, dir, add)
		storeAll(append(shared, private...)...)
		for _, k := range shared {
			wantMode(t, filepath.Join(data, k), 0o640)
		}
		for _, k := range private {
			wantMode(t, filepath.Join(data, k), 0o600)
		}
	}
	storeAll("certs/b/cert.json")
	wantMode(t, filepath.Join(data, "certs", "b"), 0o750)
	wantMode(t, filepath.Join(data, "certs", "b", "cert.json"), 0o640)
	lock(t, s, "issue/a")
	wantMode(t, filepath.Join(dir, "locks", "issue+a.lock"), 0o600)

	// The folder decides for new values; a value the group could read
	// before stays readable in a folder made private again, and one the
	// group could not read becomes readable in a group-readable folder.
	if err := os.Chmod(filepath.Join(data, "certs", "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "certs", "b", "cert.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	storeAll("certs/a/cert.json", "certs/a/order.json", "certs/b/cert.json")
	wantMode(t, filepath.Join(data, "certs", "a", "cert.json"), 0o640)
	wantMode(t, filepath.Join(data, "certs", "a", "order.json"), 0o600)
	wantMode(t, filepath.Join(data, "certs", "b", "cert.json"), 0o640)
}

// TestNewStaysPrivate: group read is opted in by the data folder's mode,
// never by the storage directory's: New creates data and locks 0700 and
// values stored then are 0600, even in a storage directory an
// administrator created 0755.
func TestNewStaysPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, 10*time.Second, true)
	if err := s.Store(t.Context(), "certs/a/cert.json", []byte("v")); err != nil {
		t.Fatal(err)
	}
	wantMode(t, filepath.Join(dir, "data"), 0o700)
	wantMode(t, filepath.Join(dir, "locks"), 0o700)
	wantMode(t, filepath.Join(dir, "data", "certs", "a"), 0o700)
	wantMode(t, filepath.Join(dir, "data", "certs", "a", "cert.json"), 0o600)
}
