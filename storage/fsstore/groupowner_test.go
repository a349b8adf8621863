package fsstore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestGroupReadOnlyToItsGroup: a value or folder is made group-readable
// only for the group its folder (or the file it replaces) lets read. Run
// as an unprivileged user outside that group, whose new files get its own
// group, the Store cannot hand them to the folder's group and so leaves
// them private, rather than letting its own group read them; in a folder
// of its own group it grants read as usual. Like TestCheckWrite, it needs
// root to start the child as another user.
func TestGroupReadOnlyToItsGroup(t *testing.T) {
	if dir := os.Getenv("FSSTORE_GROUPREAD_DIR"); dir != "" {
		groupReadChild(t, dir)
		return
	}
	dir, s := rootStore(t, "fsstore-group-")
	if err := s.Store(context.Background(), "root/prev.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// nobody owns everything; root/ and root/prev.json belong to group
	// root (0), which may read them, and own/ to nobody's group.
	for p, gid := range map[string]int{dir: nobody, s.dataDir: nobody, s.lockDir: nobody,
		filepath.Join(s.dataDir, "root"): 0, filepath.Join(s.dataDir, "root", "prev.json"): 0} {
		if err := os.Chown(p, nobody, gid); err != nil {
			t.Fatal(err)
		}
	}
	for p, mode := range map[string]fs.FileMode{filepath.Join(s.dataDir, "root"): 0o750,
		filepath.Join(s.dataDir, "root", "prev.json"): 0o640, s.dataDir: 0o750} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	runAsNobody(t, dir, "TestGroupReadOnlyToItsGroup", "FSSTORE_GROUPREAD_DIR")
}

// groupReadChild is TestGroupReadOnlyToItsGroup's half that runs as
// nobody.
func groupReadChild(t *testing.T, dir string) {
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"root/prev.json", "root/new.json", "root/sub/new.json", "own/new.json"} {
		if err := s.Store(ctx, k, []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]fs.FileMode{
		"root/prev.json": 0o600, "root/new.json": 0o600, "root/sub": 0o700, "root/sub/new.json": 0o600,
		"own": 0o750, "own/new.json": 0o640,
	} {
		fi, err := os.Stat(filepath.Join(s.dataDir, p))
		if err != nil {
			t.Fatal(err)
		}
		gid, _ := fileGID(fi)
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (group %d), want %v", p, fi.Mode().Perm(), gid, want)
		}
	}
	t.Logf("checked as uid %d", os.Getuid())
}

// TestStableInodesHere: the test's own file system (ext4, tmpfs, overlay:
// all keep inode numbers) is judged by inode, not by file system alone.
func TestStableInodesHere(t *testing.T) {
	if !stableInodes(t.TempDir()) {
		t.Errorf("the temporary directory's file system is taken for one that renumbers inodes")
	}
}
