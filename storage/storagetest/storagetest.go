// Package storagetest checks that a storage backend keeps the contract of
// storage.Storage: values, keys and listing, atomic stores under
// concurrency, and leased locks shared by several handles as if they were
// several processes.
//
// A backend's test calls Run:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storagetest.Backend {
//			dir := t.TempDir()
//			return storagetest.Backend{Open: func(t *testing.T, ttl time.Duration, renew bool) storage.Storage {
//				return openHandle(t, dir, ttl, renew)
//			}}
//		})
//	}
//
// Times are used only for lease semantics (a renewed lease is kept, an
// expired one is taken over, not before it expires), with generous bounds,
// never as performance assertions.
package storagetest

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// Backend opens handles onto one shared backing store.
type Backend struct {
	// Open returns a new handle onto the same backing store, as another
	// process would see it. leaseTTL and renew configure that handle's
	// leases: renew=false simulates a holder that died (its leases are
	// never renewed and so expire after leaseTTL).
	//
	// Run calls Open only from the subtest's own goroutine, so Open may
	// call t.Fatal; it should release the handle with t.Cleanup.
	Open func(t *testing.T, leaseTTL time.Duration, renew bool) storage.Storage
}

// Run runs the contract tests as subtests. newBackend is called once per
// subtest and must return a fresh, empty backing store.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Helper()
	for _, ct := range contractTests() {
		t.Run(ct.name, func(t *testing.T) {
			ct.run(t, newBackend(t))
		})
	}
}

// contractTest is one subtest of Run.
type contractTest struct {
	name string
	run  func(t *testing.T, b Backend)
}

// contractTests lists the subtests of Run, in order.
func contractTests() []contractTest {
	return []contractTest{
		{"LoadMissing", testLoadMissing},
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"List", testList},
		{"LoadMany", testLoadMany},
		{"ValidKeys", testValidKeys},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentWritersOneKey", testConcurrentOneKey},
		{"ConcurrentWritersManyKeys", testConcurrentManyKeys},
		{"LockMutualExclusion", testLockMutualExclusion},
		{"LockContention", testLockContention},
		{"LockCancelWhileWaiting", testLockCancelWhileWaiting},
		{"LeaseState", testLeaseState},
		{"LockRenewal", testLockRenewal},
		{"LockExpiredTakeover", testLockExpiredTakeover},
		{"UnlockIdempotent", testUnlockIdempotent},
		{"RelockAfterUnlock", testRelockAfterUnlock},
	}
}

const (
	// handleTTL is the lease TTL of handles whose lease length does not
	// matter to the test.
	handleTTL = 5 * time.Second
	// patience bounds waits that should end promptly; exceeding it fails
	// the test (it is no performance assertion, only a guard against hangs).
	patience = 30 * time.Second
)

// open returns a new handle with renewed leases of handleTTL.
func open(t *testing.T, b Backend) storage.Storage {
	t.Helper()
	return b.Open(t, handleTTL, true)
}

// timeout returns a context that ends after d or at the end of the test.
func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustStore stores value under key or fails the test.
func mustStore(t *testing.T, s storage.Storage, key string, value []byte) {
	t.Helper()
	if err := s.Store(timeout(t, patience), key, value); err != nil {
		t.Fatalf("Store(%q): %v", key, err)
	}
}

// mustLoad loads key or fails the test.
func mustLoad(t *testing.T, s storage.Storage, key string) []byte {
	t.Helper()
	v, err := s.Load(timeout(t, patience), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	return v
}

// mustList lists prefix or fails the test.
func mustList(t *testing.T, s storage.Storage, prefix string) []string {
	t.Helper()
	keys, err := s.List(timeout(t, patience), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

// wantList fails the test unless List(prefix) returns exactly want, in order.
func wantList(t *testing.T, s storage.Storage, prefix string, want []string) {
	t.Helper()
	if got := mustList(t, s, prefix); !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, got, want)
	}
}

// wantNotExist fails the test unless Load(key) reports fs.ErrNotExist.
func wantNotExist(t *testing.T, s storage.Storage, key string) {
	t.Helper()
	v, err := s.Load(timeout(t, patience), key)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%q) = %q, %v; want an error matching fs.ErrNotExist", key, v, err)
	}
}

// mustLock takes the lock name within patience or fails the test, and
// unlocks it at the end of the test.
func mustLock(t *testing.T, s storage.Storage, name string) storage.Lease {
	t.Helper()
	l, err := s.Lock(timeout(t, patience), name)
	if err != nil {
		t.Fatalf("Lock(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = l.Unlock(context.Background()) })
	return l
}

// mustUnlock unlocks l or fails the test.
func mustUnlock(t *testing.T, l storage.Lease) {
	t.Helper()
	if err := l.Unlock(timeout(t, patience)); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
