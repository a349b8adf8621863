package tlspilot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestNewKEKWhileStorageDown: with the KEK file missing, New creates a
// new KEK only when the storage answered that it holds no sealed key: a
// storage that does not answer (it holds a kek-id) gets no new KEK, which
// would have opened none of its keys once it was back (found by review).
func TestNewKEKWhileStorageDown(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	st := &flakyStorage{Storage: fs} // see storagehealth_test.go
	kek := filepath.Join(dir, "kek")
	if _, err := New(ctx, Config{CA: "https://127.0.0.1:1/dir", Storage: st, KeyFile: kek}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(kek); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	_, err = New(ctx, Config{CA: "https://127.0.0.1:1/dir", Storage: st, KeyFile: kek})
	if _, serr := os.Stat(kek); err == nil || serr == nil {
		t.Errorf("storage down, KEK file missing: New %v, KEK file created %v; want an error and no file", err, serr == nil)
	}
}

// TestRefusedManageKeepsExtras: a ManageCerts call refused for its names
// leaves the challenge directory and standalone address of a certificate
// managed already as they were (found by review).
func TestRefusedManageKeepsExtras(t *testing.T) {
	ctx := t.Context()
	m, err := New(ctx, Config{CA: "https://127.0.0.1:1/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}, ChallengeDir: "/srv/a"}); err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}, ChallengeDir: "/srv/evil", Standalone: ":9999"}); err == nil {
		t.Fatal("a second call for a managed name was accepted")
	}
	id := certstore.CertID([]string{"a.example.test"}, m.cfg.KeyTypes[0])
	m.extras.mu.Lock()
	dir, addr := m.extras.dirs[id], m.extras.addrs[id]
	m.extras.mu.Unlock()
	if dir != "/srv/a" || addr != "" {
		t.Errorf("after a refused call: challenge dir %q (want /srv/a), standalone %q (want none)", dir, addr)
	}
}

// failingPruner is a file storage whose pruning of empty folders fails,
// as for a user that may not read or remove another's challenge folders.
type failingPruner struct {
	storage.Storage
	fs *fsstore.Store
}

func (p failingPruner) PruneFolder(ctx context.Context, prefix string) error {
	return p.fs.PruneFolder(ctx, prefix)
}

func (failingPruner) PruneEmptyFolders(context.Context, string) (int, error) {
	return 0, errors.New("permission denied")
}

// TestCleanPruneFailureHarmless: the housekeeping of empty challenge
// folders never fails a clean-up that succeeded otherwise (found by
// review: a challenges folder this user may not read made `tlspilot
// clean` fail).
func TestCleanPruneFailureHarmless(t *testing.T) {
	fs, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{CA: "https://127.0.0.1:1/dir", Storage: failingPruner{Storage: fs, fs: fs}, KeyFile: filepath.Join(t.TempDir(), "kek")}
	if _, err := Clean(t.Context(), cfg, CleanOptions{}); err != nil {
		t.Errorf("Clean: %v; want success, the pruning failure ignored", err)
	}
}
