package tlspilot

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestClean: certificates from Pebble that are no longer configured are
// removed once expired or obtained more than OlderThan ago, with every
// record under their folder; configured ones, the account and the
// key-encryption key stay; a dry run changes nothing.
func TestClean(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: 5 * time.Second})
	cfg := testConfig(t, p, nil)
	ctx := context.Background()
	keep, gone, fresh := Cert{Names: []string{"keep.example.test"}}, Cert{Names: []string{"gone.example.test"}}, Cert{Names: []string{"fresh.example.test"}}
	obtain(t, p, cfg, keep, gone)
	before := readTree(t, cfg.StorageDir)

	// Nothing unmanaged is old enough yet.
	if got, err := Clean(ctx, cfg, CleanOptions{OlderThan: 30 * 24 * time.Hour}, keep); err != nil || len(got) != 0 {
		t.Fatalf("Clean(30d): %v %+v, want nothing removed", err, got)
	}
	// A dry run names what would go and removes nothing.
	got, err := Clean(ctx, cfg, CleanOptions{OlderThan: time.Nanosecond, DryRun: true}, keep)
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Names, gone.Names) || got[0].Reason != "obtained 0d ago" {
		t.Fatalf("dry run: %v %+v, want gone.example.test", err, got)
	}
	if after := readTree(t, cfg.StorageDir); len(after) != len(before) {
		t.Errorf("dry run changed the storage: %d files, then %d", len(before), len(after))
	}

	// Once gone's certificate has expired it goes; fresh, obtained
	// later, stays.
	time.Sleep(time.Until(got[0].NotAfter) + 100*time.Millisecond)
	obtain(t, p, cfg, fresh)
	got, err = Clean(ctx, cfg, CleanOptions{OlderThan: 30 * 24 * time.Hour}, keep)
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Names, gone.Names) || got[0].Reason != "expired" {
		t.Fatalf("Clean after expiry: %v %+v, want gone.example.test expired", err, got)
	}
	ids, err := storedIDs(ctx, mustStore(t, cfg))
	if err != nil || len(ids) != 2 || slices.Contains(ids, got[0].ID) {
		t.Errorf("stored after Clean: %v %v, want keep and fresh", ids, err)
	}
	// With --older-than shorter than its age, fresh goes too; keep, the
	// account and the key-encryption key stay.
	if got, err = Clean(ctx, cfg, CleanOptions{OlderThan: time.Nanosecond}, keep); err != nil || len(got) != 1 || !slices.Equal(got[0].Names, fresh.Names) {
		t.Fatalf("Clean(1ns): %v %+v, want fresh.example.test", err, got)
	}
	after := readTree(t, cfg.StorageDir)
	for path := range before {
		rel, _ := filepath.Rel(cfg.StorageDir, path)
		_, kept := after[path]
		if removable := strings.Contains(rel, "/certs/gone.example.test-"); kept == removable {
			t.Errorf("%s: kept %v", rel, kept)
		}
	}
}

// obtain runs a Manager on cfg until certs are obtained.
func obtain(t *testing.T, p *testenv.Pebble, cfg Config, certs ...Cert) {
	t.Helper()
	t.Run("obtain", func(t *testing.T) {
		m := startManager(t, p, cfg)
		if err := m.ManageCerts(context.Background(), certs...); err != nil {
			t.Fatal(err)
		}
		waitServing(t, m, 30*time.Second)
	})
}

// mustStore opens cfg's storage as Clean does.
func mustStore(t *testing.T, cfg Config) *certstore.Store {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	st, err := cleanStore(cfg, true)
	if err != nil || st == nil {
		t.Fatalf("open storage: %v", err)
	}
	return st
}
