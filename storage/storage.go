// Package storage declares where tlspilot keeps its state: certificates,
// ACME accounts, order progress and challenge answers, and the locks that
// let several processes share that state without ordering a certificate
// twice.
//
// Backends (fsstore for files, pgstore for PostgreSQL) implement Storage;
// storagetest.Run checks that a backend keeps this contract.
package storage

import (
	"context"
	"errors"
	"time"
)

// ErrLockLost is reported by Lease.Err after a lease could not be renewed
// and another holder may have taken the lock over.
var ErrLockLost = errors.New("storage: lock lease lost")

// Storage is a key/value store with named locks.
//
// Keys are slash-separated paths made of the characters [a-z0-9._-] and
// '/', chosen by tlspilot (never taken from a network request); a key never
// starts or ends with '/', contains no empty segment and no "." or ".."
// segment. Implementations MUST reject other keys with an error instead of
// mapping them anywhere.
//
// All methods MUST be safe for concurrent use by several goroutines, and by
// several processes sharing the same backing store. All methods MUST honour
// ctx cancellation for any waiting they do.
//
// Fencing: a Store or Delete whose ctx carries a lease of this Storage
// (WithLease) is a write made under that lock. A backend that can SHOULD
// make it only if the lease is still held when the write takes effect,
// atomically with the write, and otherwise fail with an error wrapping
// ErrLockLost and change nothing; pgstore does, fsstore cannot and ignores
// the lease. CheckKey is the key syntax every backend shares.
type Storage interface {
	// Load returns the value stored under key. A missing key MUST yield an
	// error that satisfies errors.Is(err, fs.ErrNotExist).
	Load(ctx context.Context, key string) ([]byte, error)

	// Store saves value under key, replacing any earlier value. It MUST be
	// atomic: a concurrent or later Load sees either the whole old value or
	// the whole new one, also after a crash at any moment, and once Store
	// returns nil the value MUST survive a crash of the process (and, where
	// the backend can promise it, of the machine).
	Store(ctx context.Context, key string, value []byte) error

	// Delete removes key. Deleting a missing key MUST NOT be an error.
	Delete(ctx context.Context, key string) error

	// List returns every key that starts with prefix followed by '/' (all
	// keys below that folder, at any depth), sorted. An empty prefix lists
	// every key. A prefix with no keys yields an empty list and no error.
	List(ctx context.Context, prefix string) ([]string, error)

	Locker
}

// Locker hands out named, leased locks. A lock is held by at most one
// holder at a time across every process sharing the backing store.
type Locker interface {
	// Lock waits until the lock called name is free, takes it and returns
	// its lease. It MUST return ctx.Err() (possibly wrapped) if ctx ends
	// first. Lock names follow the key syntax of Storage.
	//
	// The lease lasts a backend-specific time and MUST be renewed by the
	// implementation in the background while it is held, so a live holder
	// never loses it through slowness alone. A lease whose holder stopped
	// renewing (the process died) MUST be taken over by the next Lock once
	// it has expired; it MUST NOT be taken over before.
	Lock(ctx context.Context, name string) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Unlock releases the lock. It is safe to call more than once; calls
	// after the first do nothing and return nil.
	Unlock(ctx context.Context) error

	// Done is closed when the lease ends: after Unlock, or when it could
	// not be renewed in time. Long work done under a lock SHOULD stop when
	// Done is closed and Err reports ErrLockLost.
	Done() <-chan struct{}

	// Err is nil while the lease is held, ErrLockLost (possibly wrapped)
	// if it was lost, and nil after a clean Unlock.
	Err() error

	// Expires reports when the lease runs out unless renewed.
	Expires() time.Time
}

// WriteChecker is an optional interface of a Storage that can tell,
// without writing anything, whether this process may replace or delete
// the value stored under a key. An administrator may make some values
// read-only to the process that uses the storage: `tlspilot init --user`
// leaves the ACME account so, and tlspilot then never tries to replace
// it. CheckWrite MUST return nil when the process may, and otherwise an
// error wrapping fs.ErrPermission that names what it lacks; it MUST NOT
// change anything. A Storage that cannot tell does not implement it:
// callers then assume they may.
type WriteChecker interface {
	CheckWrite(ctx context.Context, key string) error
}

// Watcher is an optional interface of a Storage that tells its users,
// without their polling, that a value may have changed: a cluster node
// then puts in service at once a certificate another node stored.
// pgstore implements it with PostgreSQL's LISTEN/NOTIFY.
type Watcher interface {
	// Watch returns a channel that receives a value soon after the value
	// under key may have changed (stored or deleted by this or any other
	// process sharing the backing store), and also whenever changes may
	// have gone unnoticed: when the backend lost its connection, while it
	// tries to get it back, and when it has. Values carry no data and MAY be spurious; several
	// changes MAY be told by one value (the channel buffers one, and
	// sends never block). The receiver reads key again when told.
	//
	// Watch MUST NOT block on I/O: a backend that cannot watch for a
	// while (its database unreachable) retries in the background, with
	// backoff. Delivery is best effort, so callers MUST keep a periodic
	// check as the fallback. The channel is closed when ctx ends or the
	// Storage is closed.
	Watch(ctx context.Context, key string) <-chan struct{}
}

// FolderPruner is an optional interface of a Storage that keeps folders
// of keys as such (fsstore: directories), which outlive their last key.
// A user whose keys live in folders of their own (a challenge answer's
// token) prunes each when it is done with it, so that they do not pile
// up. Storages without folders (pgstore) do not implement it.
type FolderPruner interface {
	// PruneFolder removes the folder prefix if it holds nothing. It does
	// nothing and returns nil if the folder holds a key (or anything
	// else), does not exist, or is a key itself. It MUST be safe against
	// a concurrent Store below prefix, in this process or another: that
	// Store succeeds, making the folder again if need be.
	PruneFolder(ctx context.Context, prefix string) error
	// PruneEmptyFolders removes every empty folder below prefix (not
	// prefix itself), deepest first, as PruneFolder does each, and
	// returns how many it removed: for folders left by an older version
	// or a crash.
	PruneEmptyFolders(ctx context.Context, prefix string) (int, error)
}

// BatchLoader is an optional interface of a Storage that reads many keys
// in one round trip, for a backend where every Load costs one (pgstore: a
// node starting over 10,000 certificates reads them in a hundred queries,
// not 20,000). A Storage whose Load is as cheap as a batch (fsstore) does
// not implement it: callers then Load each key.
type BatchLoader interface {
	// LoadMany returns the value of each of keys that exists, as Load
	// would; a key that does not exist is left out of the map and is no
	// error. Every key MUST be checked as Load checks it: one invalid key
	// fails the call. Where the backend can, the values are read at one
	// moment (pgstore: one statement).
	LoadMany(ctx context.Context, keys []string) (map[string][]byte, error)
}
