package fsstore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/storagetest"
)

// TestContractExFAT runs the storage contract on exFAT mounted through
// FUSE, a real file system without hard links (link fails with EPERM)
// and without permission bits: New must either work there or refuse, and
// here it can work, so the whole contract must pass.
func TestContractExFAT(t *testing.T) {
	mnt := testenv.MountExFAT(t, "")
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storagetest.Backend {
		dir := filepath.Join(mnt, "store"+strconv.FormatInt(n.Add(1), 10))
		return storagetest.Backend{Open: func(t *testing.T, ttl time.Duration, renew bool) storage.Storage {
			t.Helper()
			return openStore(t, dir, ttl, renew)
		}}
	})
}

// TestExFATLocks covers on exFAT what the contract leaves out: a lock
// left by a dead holder is broken, also by several processes at once, and
// holding and renewing a lock leaves no files behind.
func TestExFATLocks(t *testing.T) {
	mnt := testenv.MountExFAT(t, "")
	t.Run("concurrent takeover", func(t *testing.T) {
		testConcurrentTakeover(t, filepath.Join(mnt, "takeover"))
	})
	dir := filepath.Join(mnt, "store")
	s := openStore(t, dir, 300*time.Millisecond, true)
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeLockFile(t, dir, "dead.lock", foreignToken, time.Now().Add(-time.Minute))
	l := lock(t, s, "dead")
	wantBlocked(t, s, "dead", 500*time.Millisecond) // renewed meanwhile
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("leftover file in locks: %s", e.Name())
	}
	if _, err := fsstore.New(fsstore.Options{Dir: dir}); err != nil {
		t.Errorf("second New on the same exFAT dir: %v", err)
	}
}

// TestEmptyLockFile: an empty lock file is a lock being published without
// hard links. It is respected for at least 10 seconds even when its
// modification time looks older than the lease (FAT and exFAT keep it to
// the second or two), and taken over once it is clearly abandoned.
func TestEmptyLockFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 300*time.Millisecond, true)
	for name, d := range map[string]time.Duration{"fresh": 2 * time.Second, "abandoned": time.Minute} {
		path := filepath.Join(dir, "locks", name+".lock")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		age(t, path, d)
	}
	wantBlocked(t, s, "fresh", 500*time.Millisecond)
	lock(t, s, "abandoned")
}
