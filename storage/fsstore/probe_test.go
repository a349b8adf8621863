package fsstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/storagetest"
)

// without returns a probe fault hook that fails the probe of capability.
func without(capability string) func(string) error {
	return func(c string) error {
		if c == capability {
			return errors.New("injected: not supported")
		}
		return nil
	}
}

// TestNewRefusesMissingCapability: a file system that cannot sync a file
// or a folder, rename over a file or create exclusively is refused by New,
// with an error naming the folder and what is missing, and the probe
// leaves nothing behind.
func TestNewRefusesMissingCapability(t *testing.T) {
	for _, c := range []string{capSyncFile, capSyncDir, capRename, capExclusive} {
		t.Run(c, func(t *testing.T) {
			dir := t.TempDir()
			s, err := New(Options{Dir: dir, probeFault: without(c)})
			if err == nil {
				t.Fatalf("New succeeded without %s", c)
			}
			if s != nil {
				t.Errorf("New returned a Store with its error")
			}
			want := filepath.Join(dir, "data") + ": the file system does not support " + c
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			for _, sub := range []string{"data", "locks"} {
				if entries, _ := os.ReadDir(filepath.Join(dir, sub)); len(entries) != 0 {
					t.Errorf("probe left %v in %s", entries, sub)
				}
			}
		})
	}
}

// TestContractWithoutHardLinks runs the storage contract with hard links
// reported missing, so locks are published by exclusive create and rename
// as on exFAT, here on the test's own file system.
func TestContractWithoutHardLinks(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Backend {
		dir := t.TempDir()
		return storagetest.Backend{Open: func(t *testing.T, ttl time.Duration, renew bool) storage.Storage {
			t.Helper()
			ri := ttl / 3
			if !renew {
				ri = -1
			}
			s, err := New(Options{Dir: dir, LeaseTTL: ttl, RenewInterval: ri, PollInterval: 20 * time.Millisecond,
				probeFault: without(capHardLinks)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if s.links {
				t.Fatal("New found hard links although their probe failed")
			}
			return s
		}}
	})
}
