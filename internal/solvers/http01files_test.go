package solvers

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestHTTP01Files: an owner with a directory gets its answer as a file
// (0644 whatever the umask), also served by the handler from storage; the
// file stays while another owner holds the same token and goes with the
// last; an owner without a directory writes no file; a token outside the
// alphabet never becomes a path.
func TestHTTP01Files(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	inner := NewHTTP01(openStores(t, 1)[0], nil)
	h := NewHTTP01Files(inner, func(owner string) string {
		if owner == "nodir" {
			return ""
		}
		return dir
	})
	a := WithOwner(context.Background(), "a")
	b := WithOwner(context.Background(), "b")
	ch := httpChallenge("x.test", "tok-1")
	for _, ctx := range []context.Context{a, b, a} {
		if err := h.Present(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "tok-1")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != ch.KeyAuthorization || fi.Mode().Perm() != 0o644 {
		t.Errorf("answer file %q, mode %04o", got, fi.Mode().Perm())
	}
	if got := served(t, inner, "tok-1"); got != ch.KeyAuthorization {
		t.Errorf("handler serves %q", got)
	}
	if err := h.CleanUp(a, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file gone while owner b holds it: %v", err)
	}
	if err := h.CleanUp(b, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after the last owner cleaned up: %v", err)
	}
	if err := h.CleanUp(b, ch); err != nil {
		t.Errorf("second clean-up: %v", err)
	}
	nodir := WithOwner(context.Background(), "nodir")
	if err := h.Present(nodir, httpChallenge("y.test", "tok-2")); err != nil {
		t.Fatal(err)
	}
	if err := h.Present(a, httpChallenge("z.test", "../../etc/passwd")); err == nil {
		t.Error("a token with a path was accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("directory holds %d entries, want none", len(ents))
	}
}
