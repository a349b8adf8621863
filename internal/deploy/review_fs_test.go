package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestReviewSecondWriteUnchangedOnEveryFS: on the file systems deploy
// folders live on (tmpfs, overlayfs as in containers, exFAT through
// FUSE), a second Write of the same certificate changes nothing and
// InPlace says so: anything at a deploy path that openExisting would
// not compare (a link count other than 1, say) would be rewritten, and
// the software reloaded, on every run.
func TestReviewSecondWriteUnchangedOnEveryFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: mounts")
	}
	chain, key := testPEM(t, "a.example")
	for _, fsys := range []struct {
		name  string
		mount func(t *testing.T) string
		modes bool // the file system keeps modes (exFAT has none: InPlace is never true there)
	}{
		{"tmpfs", func(t *testing.T) string { return mountFS(t, "tmpfs", "tmpfs", "") }, true},
		{"overlayfs", mountOverlay, true},
		{"exfat-fuse", func(t *testing.T) string { return testenv.MountExFAT(t, "") }, false},
	} {
		t.Run(fsys.name, func(t *testing.T) {
			dir := fsys.mount(t)
			o := allFiles(dir)
			f := newFiles(t, o)
			if !mustWrite(t, f, chain, key) {
				t.Fatal("first Write changed nothing")
			}
			if in, err := f.InPlace(t.Context(), chain, key); err != nil || !in && fsys.modes {
				t.Errorf("InPlace after Write = %v, %v; want true", in, err)
			}
			if mustWrite(t, f, chain, key) {
				t.Error("second Write of the same certificate replaced files (and would reload)")
			}
		})
	}
}

// mountFS mounts a file system of type typ on a new folder.
func mountFS(t *testing.T, typ, src, opts string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-t", typ, src, dir}
	if opts != "" {
		args = append([]string{"-o", opts}, args...)
	}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v\n%s", args, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// mountOverlay mounts an overlayfs whose lower layer already holds a
// folder, as a container image would, and returns that folder.
func mountOverlay(t *testing.T) string {
	t.Helper()
	base := mountFS(t, "tmpfs", "tmpfs", "") // overlayfs upper layers cannot be on overlayfs
	for _, d := range []string{"lower/ssl", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(base, "merged")
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	if out, err := exec.Command("mount", "-t", "overlay", "-o", opts, "overlay", merged).CombinedOutput(); err != nil {
		t.Fatalf("mount overlay: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", merged).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", merged, err, out)
		}
	})
	return filepath.Join(merged, "ssl")
}
