package tlspilot

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestKeysEncryptedAtRest: no private key is ever written in clear, files
// are 0600 in 0700 directories, the key-encryption key is 0400, and a copy
// of the storage without that key yields no usable certificate.
func TestKeysEncryptedAtRest(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	cfg.KeyTypes = []KeyType{ECDSAP256, RSA2048}
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "rest.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)

	data := filepath.Join(cfg.StorageDir, "data")
	files := 0
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if info.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want 0700", path, info.Mode().Perm())
			}
			return nil
		}
		files++
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("only %d files in storage", files)
	}
	if info, err := os.Stat(filepath.Join(cfg.StorageDir, "kek")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("key-encryption key: %v, %v", info, err)
	}

	// A copy of the storage without the key-encryption key.
	stolen := t.TempDir()
	if err := os.CopyFS(filepath.Join(stolen, "data"), os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Config{CA: p.DirectoryURL, CARoots: p.Roots, StorageDir: stolen})
	if !errors.Is(err, certstore.ErrWrongKEK) {
		t.Errorf("a Manager over the copy with a new key-encryption key: %v, want ErrWrongKEK", err)
	}
	// Nor do its keys open when read directly with that key.
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(stolen, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	fst, err := fsstore.New(fsstore.Options{Dir: stolen})
	if err != nil {
		t.Fatal(err)
	}
	st := certstore.New(fst, sealer)
	ids, err := st.ListCerts(context.Background())
	if err != nil || len(ids) == 0 {
		t.Fatalf("certificates in the copy: %v, %v", ids, err)
	}
	for _, id := range ids {
		if _, err := st.LoadCert(context.Background(), id); err == nil || !strings.Contains(err.Error(), "open private key") {
			t.Errorf("certificate %s opened without the key-encryption key: %v", id, err)
		}
	}
	if _, err := st.LoadAccountKey(context.Background(), certstore.AccountID(cfg.CA, []string{"mailto:" + cfg.Email})); err == nil || !strings.Contains(err.Error(), "open private key") {
		t.Errorf("account key opened without the key-encryption key: %v", err)
	}
}
