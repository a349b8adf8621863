package tlspilot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
)

// TestNewKEKFileMissing: with the key-encryption key file gone while the
// storage holds keys sealed under a key-encryption key (its kek-id
// record, or in an older storage an account key), New refuses before
// creating any file, saying the file is missing and which key the
// storage needs. Found by a user's trial: New made a new key file, then
// failed on the kek-id mismatch, leaving the wrong key on disk.
func TestNewKEKFileMissing(t *testing.T) {
	cfg := noCAConfig(t)
	cfg.KeyFile = filepath.Join(t.TempDir(), "kek")
	if _, err := New(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cfg.KeyFile); err != nil {
		t.Fatal(err)
	}
	_, err = New(t.Context(), cfg)
	if !errors.Is(err, certstore.ErrWrongKEK) || !strings.Contains(err.Error(), "missing") ||
		!strings.Contains(err.Error(), strings.TrimSpace(string(id))) || !strings.Contains(err.Error(), cfg.KeyFile) {
		t.Errorf("New without its key file: %v; want it to say %s is missing and the storage's keys need the key with id %s", err, cfg.KeyFile, id)
	}
	if _, err := os.Stat(cfg.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was created: %v", err)
	}

	// A storage from before kek-id, holding an account key.
	if err := os.Remove(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey)); err != nil {
		t.Fatal(err)
	}
	acct := filepath.Join(cfg.StorageDir, "data", "accounts", "example", "key")
	if err := os.MkdirAll(filepath.Dir(acct), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acct, []byte("sealed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = New(t.Context(), cfg); !errors.Is(err, certstore.ErrWrongKEK) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("New without its key file, storage without kek-id: %v; want it to say the file is missing", err)
	}
	if _, err := os.Stat(cfg.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was created: %v", err)
	}

	// A storage without sealed keys gets a new key file, as before.
	fresh := noCAConfig(t)
	fresh.KeyFile = filepath.Join(t.TempDir(), "kek")
	if _, err := New(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh.KeyFile); err != nil {
		t.Errorf("new storage: %v", err)
	}
}
