// Package fsstore is the default storage backend: it keeps tlspilot's state
// in files under one directory, which several processes on one machine (or
// sharing a file system with atomic renames) may use at the same time.
//
// Layout under Options.Dir:
//
//	data/<key>          the value stored under key; the key's segments
//	                    become directories
//	locks/<name>.lock   a held lock, as JSON {owner, token, expires}; each
//	                    '/' in the name is written as '+' (names too long
//	                    for one file name are written as "~<sha256>.lock")
//
// Names starting with ".~" are temporary files, lock takeover claims and
// the like; keys cannot contain '~', and List skips every name that is not
// a valid key segment, so it never reports them (keys may start with '.').
// Files are created with mode 0600 and directories with mode 0700 (on file
// systems without permissions, such as FAT and exFAT, they get what the
// mount options say; New logs a warning then). An administrator may open
// the data folder to the storage's group (`chmod -R g+rX`, so that a
// monitoring user can read it): values written later, and folders made
// in it, then stay or become readable by that group, never by others, and
// never private keys or lock files (see grant).
//
// Once New has opened the storage, its data folder missing or replaced
// (moved away, an unmounted volume) makes every method fail with ErrGone,
// never read as an empty storage; only New creates a missing storage.
//
// Store writes a temporary file next to the target, syncs it, renames it
// over the target and syncs the directory, so a reader sees either the old
// or the new value, also after a crash.
//
// A lock is taken by publishing a fully written temporary file as its lock
// file, which fails if the lock file exists: by a hard link, or where the
// file system has none (FAT, exFAT) by creating the lock file empty with
// O_EXCL and renaming the temporary file over it. While held, the lease is
// renewed in the background; a lock whose lease expired (its holder died or
// froze) is taken over by the next Lock. Expiry compares wall-clock times,
// so processes sharing a lock directory need roughly synchronised clocks.
//
// # What the file system must do
//
// New checks, once, in both folders, what the Store relies on: syncing a
// file and a directory, renaming a file over another and exclusive create
// (O_CREATE|O_EXCL). A file system lacking one of them is refused with an
// error naming the folder and the missing capability, rather than failing
// at every Store or Lock later. Hard links are optional: without them
// (New logs it) locks are published as above, and an empty lock file,
// which may be one being published, is respected for at least
// max(LeaseTTL, 10s), since FAT and exFAT keep modification times only to
// a second or two. On FUSE file systems an open that races with a rename
// over the file can fail with ENOENT; Load then checks the folder listing
// and opens again while the file is listed, so a concurrent Load still
// sees the old or the new value, never a missing key.
package fsstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// Default option values.
const (
	// DefaultLeaseTTL is the lease lifetime used when Options.LeaseTTL is 0.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultPollInterval is how often a waiting Lock retries when
	// Options.PollInterval is 0.
	DefaultPollInterval = 250 * time.Millisecond
)

// Options configures a Store. Only Dir is required.
type Options struct {
	// Dir is the directory holding all state. New creates it (mode 0700)
	// if it does not exist.
	Dir string

	// LeaseTTL is how long a lease lasts unless renewed; 0 means
	// DefaultLeaseTTL. A lock whose holder stopped renewing is taken over
	// once this much time has passed since its last renewal.
	LeaseTTL time.Duration

	// RenewInterval is how often a held lease is renewed; 0 means
	// LeaseTTL/3. A negative value means never renew, so leases expire
	// after LeaseTTL: tests use it to play a holder that died or froze.
	// It must be shorter than LeaseTTL.
	RenewInterval time.Duration

	// PollInterval is how often a Lock waiting for a held lock tries again
	// (plus up to 20% random jitter); 0 means DefaultPollInterval.
	PollInterval time.Duration

	// Owner names this process in lock files, for people reading them;
	// "" means "hostname:pid:random".
	Owner string

	// Logger receives lock events (taken over, lost, renewal failures)
	// and what New found missing in the file system; nil discards them.
	Logger *slog.Logger

	// ReadOnly opens an existing storage for reading only: New creates
	// and probes nothing (so a user who may only read the directory can
	// open it), and Store, Delete and Lock fail with ErrReadOnly. Status
	// reports use it.
	ReadOnly bool

	// probeFault, if set, fails New's probe of a capability (one of the
	// cap* names) with the error it returns: unit tests use it to play a
	// file system that lacks it.
	probeFault func(capability string) error
}

// Store is a storage.Storage kept in files under one directory. It is safe
// for concurrent use by several goroutines and several processes. Create it
// with New.
type Store struct {
	dataDir string
	lockDir string
	ttl     time.Duration
	renew   time.Duration // < 0: never renew
	poll    time.Duration
	owner   string
	host    string // this host's name, to recognise locks of dead local processes
	log     *slog.Logger
	links   bool        // hard links work in lockDir; see publish
	fuse    bool        // dataDir is on FUSE; see readValue
	ro      bool        // Options.ReadOnly
	dataFI  fs.FileInfo // dataDir as New found it; see checkData
	// stableInodes: dataDir is on a file system whose inode numbers stay
	// (checkData compares them; elsewhere only the file system).
	stableInodes bool
}

// ErrReadOnly is returned by the writing methods of a Store opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("fsstore: storage opened read-only")

// openReadOnly opens the existing storage in dir for reading.
func openReadOnly(dir string, opts Options) (*Store, error) {
	data := filepath.Join(dir, "data")
	s := &Store{dataDir: data, lockDir: filepath.Join(dir, "locks"), ttl: opts.LeaseTTL,
		poll: opts.PollInterval, owner: opts.Owner, log: opts.Logger, ro: true, fuse: onFUSE(data)}
	if err := s.openedData(); err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	return s, nil
}

// New checks opts, creates opts.Dir and its data and locks folders if they
// are missing, checks that their file system has what the Store needs (see
// the package documentation) and returns a Store on them. An error about
// the file system names the folder and the missing capability.
func New(opts Options) (*Store, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	dir := filepath.Clean(opts.Dir)
	if opts.ReadOnly {
		return openReadOnly(dir, opts)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fsstore: create dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fsstore: %s is not a directory", dir)
	}
	s := &Store{
		dataDir: filepath.Join(dir, "data"),
		lockDir: filepath.Join(dir, "locks"),
		ttl:     opts.LeaseTTL,
		renew:   opts.RenewInterval,
		poll:    opts.PollInterval,
		owner:   opts.Owner,
		log:     opts.Logger,
	}
	s.host, _ = os.Hostname()
	for _, d := range []string{s.dataDir, s.lockDir} {
		if err := mkdirSynced(d, grant{}); err != nil {
			return nil, fmt.Errorf("fsstore: create dir: %w", err)
		}
	}
	if err := s.probe(opts.probeFault); err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	if err := s.openedData(); err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	return s, nil
}

// probe checks the data and locks folders' file systems and records what
// they lack but the Store can do without.
func (s *Store) probe(fault func(string) error) error {
	p := prober{log: s.log, fault: fault}
	data, err := p.probe(s.dataDir)
	if err != nil {
		return err
	}
	locks, err := p.probe(s.lockDir)
	if err != nil {
		return err
	}
	s.links, s.fuse = locks.hardLinks, data.fuse
	return nil
}

// withDefaults fills in the zero fields of opts and rejects bad values.
func withDefaults(opts Options) (Options, error) {
	if opts.Dir == "" {
		return opts, errors.New("options: Dir is empty")
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < 0 {
		return opts, fmt.Errorf("options: negative LeaseTTL %s", opts.LeaseTTL)
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = opts.LeaseTTL / 3
	}
	if opts.RenewInterval >= opts.LeaseTTL {
		return opts, fmt.Errorf("options: RenewInterval %s is not shorter than LeaseTTL %s",
			opts.RenewInterval, opts.LeaseTTL)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.PollInterval < 0 {
		return opts, fmt.Errorf("options: negative PollInterval %s", opts.PollInterval)
	}
	if opts.Owner == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown"
		}
		opts.Owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + randomHex(4)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand.Read crashes the program instead
	return hex.EncodeToString(b)
}

// notExist reports whether err means a path does not exist, including when
// a path segment is a file (ENOTDIR) or the path is a folder, not a value.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || isNotDir(err) || isDir(err)
}

var _ storage.Storage = (*Store)(nil)
