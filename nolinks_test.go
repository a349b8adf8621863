package tlspilot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestObtainOnExFAT keeps the storage and the default KEK file on exFAT,
// a file system without hard links, mounted private to its owner: a
// certificate is obtained and served, and a second Manager started on the
// same storage serves it without a new order.
func TestObtainOnExFAT(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	cfg.StorageDir = filepath.Join(testenv.MountExFAT(t, "077"), "tlspilot")
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "exfat.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	verify(t, handshake(t, m, "exfat.example.test", nil), p.IssuerRoots(t), "exfat.example.test")

	m2 := startManager2(t, p, cfg)
	if err := m2.Manage(context.Background(), "exfat.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m2, 10*time.Second)
	if got := p.Orders(); got != 1 {
		t.Errorf("orders = %d, want 1", got)
	}
}

// TestNewRefusesExFATWithoutPermissions: on exFAT mounted with default
// options every file is readable by everyone, so New refuses to create
// the KEK file there, at once, with an error naming it and the missing
// capability, instead of failing at every attempt later.
func TestNewRefusesExFATWithoutPermissions(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	cfg.StorageDir = filepath.Join(testenv.MountExFAT(t, ""), "tlspilot")
	_, err := New(context.Background(), cfg)
	if err == nil {
		t.Fatal("New succeeded with the KEK file on a file system without permissions")
	}
	for _, want := range []string{filepath.Join(cfg.StorageDir, "kek"), "does not keep file permissions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error %q does not say %q", err, want)
		}
	}
}
