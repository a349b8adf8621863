package fsstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestPruneFolder: PruneFolder removes an emptied folder and nothing
// else: not a folder holding a key, not a key, not a missing folder.
func TestPruneFolder(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, time.Minute, true)
	ctx := context.Background()
	for _, k := range []string{"a/b/one", "a/c/two"} {
		if err := s.Store(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "a/b/one"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/b", "a/c", "a/c/two", "a/missing", "a"} {
		if err := s.PruneFolder(ctx, p); err != nil {
			t.Errorf("PruneFolder(%s): %v", p, err)
		}
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "a", "b")); !os.IsNotExist(err) {
		t.Errorf("emptied folder a/b still there: %v", err)
	}
	if v, err := s.Load(ctx, "a/c/two"); err != nil || string(v) != "v" {
		t.Errorf("a/c/two after pruning: %q, %v", v, err)
	}
	if err := s.Store(ctx, "a/b/three", []byte("w")); err != nil {
		t.Errorf("store in a pruned folder: %v", err)
	}
}

// TestPruneFolderRacesStore: owners sharing one folder (two orders'
// answers for one identifier) each store, read, delete their key and
// prune the folder, as certstore does, at the same time in two
// processes: every Store succeeds (making the folder again when the
// other pruned it under it) and reads back, and no key is lost.
func TestPruneFolderRacesStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const rounds = 500
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for owner := range 2 {
		s := openStore(t, dir, time.Minute, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("tok/shared/owner%d", owner)
			for r := range rounds {
				if err := s.Store(ctx, key, []byte("answer")); err != nil {
					errs <- fmt.Errorf("owner %d round %d: store: %w", owner, r, err)
					continue
				}
				if v, err := s.Load(ctx, key); err != nil || string(v) != "answer" {
					errs <- fmt.Errorf("owner %d round %d: load after store: %q, %v", owner, r, v, err)
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- fmt.Errorf("owner %d round %d: delete: %w", owner, r, err)
				}
				if err := s.PruneFolder(ctx, "tok/shared"); err != nil {
					errs <- fmt.Errorf("owner %d round %d: prune: %w", owner, r, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var _ interface {
	PruneFolder(context.Context, string) error
} = (*fsstore.Store)(nil)
