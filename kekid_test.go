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
