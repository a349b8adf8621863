package fsstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestTrialLoadSearchOnlyFolder: a value below folders the user may
// search but not list (mode 0711, as an administrator makes them to hide
// what they hold) is read, as os.Open read it through the path. Opening
// the value one name at a time below the data folder (openValue) opened
// each folder for reading, so such a value could no longer be loaded:
// permission denied on a folder the user was never meant to list.
func TestTrialLoadSearchOnlyFolder(t *testing.T) {
	if dir := os.Getenv("FSSTORE_SEARCHONLY_DIR"); dir != "" {
		searchOnlyChild(t, dir)
		return
	}
	dir, s := rootStore(t, "fsstore-searchonly-")
	if err := s.Store(context.Background(), "accounts/a/key", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, s.dataDir, s.lockDir} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	for p, mode := range map[string]os.FileMode{filepath.Join(s.dataDir, "accounts"): 0o711,
		filepath.Join(s.dataDir, "accounts", "a"): 0o711, filepath.Join(s.dataDir, "accounts", "a", "key"): 0o444} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	runAsNobody(t, dir, "TestTrialLoadSearchOnlyFolder", "FSSTORE_SEARCHONLY_DIR")
}

// searchOnlyChild is TestTrialLoadSearchOnlyFolder's half that runs as
// nobody.
func searchOnlyChild(t *testing.T, dir string) {
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load(context.Background(), "accounts/a/key"); err != nil || string(b) != "x" {
		t.Errorf("Load below search-only folders = %q, %v; want x", b, err)
	}
	t.Logf("checked as uid %d", os.Getuid())
}
