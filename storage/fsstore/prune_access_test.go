package fsstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPruneEmptyFoldersSkipsUnreadable: a folder this user may not read
// (another user's, in a storage shared after `tlspilot init --user`) is
// left, and the empty folders beside and after it are still removed;
// the walk used to stop there with an error, pruning nothing (found by
// review). Run as nobody, as TestCheckWrite is.
func TestPruneEmptyFoldersSkipsUnreadable(t *testing.T) {
	if dir := os.Getenv("FSSTORE_PRUNE_DIR"); dir != "" {
		pruneChild(t, dir)
		return
	}
	dir, s := rootStore(t, "fsstore-prune-")
	ch := filepath.Join(s.dataDir, "challenges")
	for _, sub := range []string{"a", "m/locked", "z"} {
		if err := os.MkdirAll(filepath.Join(ch, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{dir, s.dataDir, s.lockDir, ch, filepath.Join(ch, "a"), filepath.Join(ch, "z")} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	// m stays root's, 0700: nobody can neither read nor remove it.
	runAsNobody(t, dir, "TestPruneEmptyFoldersSkipsUnreadable", "FSSTORE_PRUNE_DIR")
	for sub, want := range map[string]bool{"a": false, "z": false, "m": true} {
		if _, err := os.Stat(filepath.Join(ch, sub)); (err == nil) != want {
			t.Errorf("challenges/%s present %v, want %v", sub, err == nil, want)
		}
	}
}

// pruneChild is TestPruneEmptyFoldersSkipsUnreadable's half that runs as
// nobody.
func pruneChild(t *testing.T, dir string) {
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneEmptyFolders(context.Background(), "challenges")
	if err != nil || n != 2 {
		t.Errorf("PruneEmptyFolders: %d, %v; want 2 removed and no error", n, err)
	}
	t.Logf("checked as uid %d", os.Getuid())
}
