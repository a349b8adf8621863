package tlspilot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestWrongKEKRefused: a process given another key-encryption key than
// the one a storage's keys are sealed under (a cluster node with another
// kek_file) does not start, so it never orders again and replaces what
// it cannot read. It is told by the storage's kek-id record, or, in a
// storage from before that record was kept, by its account key; the
// right key starts as before.
func TestWrongKEKRefused(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.KeyFile = filepath.Join(t.TempDir(), "kek")
	m := startManager(t, p, cfg)
	if err := m.Manage(t.Context(), "kek.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	id, err := os.ReadFile(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey))
	if err != nil || len(strings.TrimSpace(string(id))) != 32 {
		t.Fatalf("kek-id record: %q, %v", id, err)
	}

	other := cfg
	other.KeyFile = filepath.Join(t.TempDir(), "kek")
	for _, legacy := range []bool{false, true} {
		if legacy {
			if err := os.Remove(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := New(t.Context(), other)
		if !errors.Is(err, certstore.ErrWrongKEK) || !strings.Contains(err.Error(), other.KeyFile) {
			t.Errorf("another KEK (storage without kek-id: %t): New returned %v; want ErrWrongKEK naming %s", legacy, err, other.KeyFile)
		}
		if _, err := os.Stat(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey)); legacy && err == nil {
			t.Errorf("another KEK wrote its kek-id into the storage")
		}
	}
	if _, err := New(t.Context(), cfg); err != nil {
		t.Fatalf("the storage's own KEK: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(cfg.StorageDir, "data", certstore.KEKIDKey)); err != nil || string(got) != string(id) {
		t.Errorf("kek-id written again from the account key: %q, %v; want %q", got, err, id)
	}
}

// TestKEKCheckOneAccountKeyDamaged: in a storage from before kek-id, an
// account key that does not open (damaged, or an account no longer used)
// does not refuse the KEK while another account key opens with it.
func TestKEKCheckOneAccountKeyDamaged(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	if err := m.Manage(t.Context(), "damaged.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	data := filepath.Join(cfg.StorageDir, "data")
	if err := os.Remove(filepath.Join(data, certstore.KEKIDKey)); err != nil {
		t.Fatal(err)
	}
	// An account listed before the good one, whose key is garbage.
	bad := filepath.Join(data, "accounts", "0-other", "aaaa")
	if err := os.MkdirAll(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "key"), []byte("-----BEGIN TLSPILOT ENCRYPTED KEY-----\nAAAA\n-----END TLSPILOT ENCRYPTED KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), cfg); err != nil {
		t.Errorf("the storage's own KEK with one damaged account key: %v", err)
	}
}
