package fsstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadOnly: a storage opened read-only reads what a writer stored,
// refuses every write, and opening a missing one creates nothing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Store(ctx, "certs/a/cert.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.Load(ctx, "certs/a/cert.json"); err != nil || string(b) != "x" {
		t.Errorf("Load = %q, %v", b, err)
	}
	if keys, err := r.List(ctx, "certs"); err != nil || len(keys) != 1 {
		t.Errorf("List = %v, %v", keys, err)
	}
	if err := r.Store(ctx, "certs/a/cert.json", []byte("y")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Store: %v, want ErrReadOnly", err)
	}
	if err := r.Delete(ctx, "certs/a/cert.json"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete: %v, want ErrReadOnly", err)
	}
	if _, err := r.Lock(ctx, "issue/a"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Lock: %v, want ErrReadOnly", err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	if _, err := New(Options{Dir: missing, ReadOnly: true}); err == nil {
		t.Error("a missing storage opened read-only")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("opening read-only created %s", missing)
	}
}
