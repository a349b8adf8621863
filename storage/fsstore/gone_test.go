package fsstore_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// wantGone fails the test unless every method of s fails with an error
// wrapping fsstore.ErrGone that is not fs.ErrNotExist (a storage that
// vanished is not an empty one) and Store and Lock create nothing at dir.
func wantGone(t *testing.T, s *fsstore.Store, dir string) {
	t.Helper()
	ctx := timeout(t, 5*time.Second)
	errs := map[string]error{
		"Store":        s.Store(ctx, "certs/b/cert.json", []byte("x")),
		"Store at top": s.Store(ctx, "changes.json", []byte("x")),
		"Delete":       s.Delete(ctx, "changes.json"),
	}
	_, errs["Load"] = s.Load(ctx, "changes.json")
	_, errs["Load missing key"] = s.Load(ctx, "certs/none/cert.json")
	_, errs["List"] = s.List(ctx, "")
	_, errs["List certs"] = s.List(ctx, "certs")
	l, err := s.Lock(ctx, "issue/a")
	if err == nil {
		_ = l.Unlock(ctx)
	}
	errs["Lock"] = err
	errs["CheckWrite"] = s.CheckWrite(ctx, "changes.json")
	for op, err := range errs {
		if !errors.Is(err, fsstore.ErrGone) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s on a vanished storage = %v, want fsstore.ErrGone, not fs.ErrNotExist", op, err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "data"), filepath.Join(dir, "locks", "issue+a.lock")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created on a vanished storage", p)
		}
	}
}

// TestVanishedStorage: once a Store is open, its storage directory moved
// away (`mv s1 s1x`), replaced by an empty folder (an unmounted volume's
// mount point) or by another storage makes every method fail instead of
// reading as an empty storage, and Store recreates nothing. Moved back,
// the storage works again.
func TestVanishedStorage(t *testing.T) {
	base := t.TempDir()
	dir, aside := filepath.Join(base, "s1"), filepath.Join(base, "s1x")
	s := openStore(t, dir, 10*time.Second, true)
	if err := s.Store(t.Context(), "changes.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	t.Run("moved away", func(t *testing.T) { wantGone(t, s, dir) })
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Run("empty mount point", func(t *testing.T) { wantGone(t, s, dir) })
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	other := openStore(t, dir, 10*time.Second, true)
	if err := other.Store(t.Context(), "changes.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	t.Run("another storage", func(t *testing.T) {
		ctx := t.Context()
		if b, err := s.Load(ctx, "changes.json"); !errors.Is(err, fsstore.ErrGone) {
			t.Errorf("Load from a replaced storage = %q, %v; want fsstore.ErrGone", b, err)
		}
		if err := s.Store(ctx, "x", []byte("x")); !errors.Is(err, fsstore.ErrGone) {
			t.Errorf("Store into a replaced storage = %v, want fsstore.ErrGone", err)
		}
	})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load(t.Context(), "changes.json"); err != nil || string(b) != "{}" {
		t.Errorf("Load after the storage came back = %q, %v", b, err)
	}
	if err := s.Store(t.Context(), "certs/b/cert.json", []byte("x")); err != nil {
		t.Errorf("Store after the storage came back: %v", err)
	}
}

// TestVanishedReadOnly: a Store opened read-only, as `tlspilot status`
// opens it, tells a vanished storage from an empty one too.
func TestVanishedReadOnly(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "s1")
	openStore(t, dir, 10*time.Second, true)
	r, err := fsstore.New(fsstore.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, filepath.Join(base, "s1x")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := r.Load(ctx, "changes.json"); !errors.Is(err, fsstore.ErrGone) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load = %v, want fsstore.ErrGone, not fs.ErrNotExist", err)
	}
	if keys, err := r.List(ctx, ""); !errors.Is(err, fsstore.ErrGone) {
		t.Errorf("List = %q, %v; want fsstore.ErrGone", keys, err)
	}
}

// TestVanishedExFAT: on FUSE, where a folder is recognised by its file
// system alone (see checkData), a storage moved away fails as elsewhere,
// and works again once moved back.
func TestVanishedExFAT(t *testing.T) {
	mnt := testenv.MountExFAT(t, "")
	dir, aside := filepath.Join(mnt, "s1"), filepath.Join(mnt, "s1x")
	s := openStore(t, dir, 10*time.Second, true)
	if err := s.Store(t.Context(), "changes.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	t.Run("moved away", func(t *testing.T) { wantGone(t, s, dir) })
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load(t.Context(), "changes.json"); err != nil || string(b) != "{}" {
		t.Errorf("Load after the storage came back = %q, %v", b, err)
	}
}
