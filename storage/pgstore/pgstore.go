// Package pgstore keeps tlspilot's state in PostgreSQL, so that several
// nodes (tlspilot serve on several machines behind one load balancer)
// share certificates, accounts, order progress, challenge answers and
// locks.
//
// # Tables
//
// New creates and migrates its tables itself, in the schema that the
// connection's search_path names first (normally public):
//
//	tlspilot_schema      one row per schema version applied
//	tlspilot_kv          key text, value bytea, token, updated
//	tlspilot_locks       name text, owner, token bigint, expires timestamptz
//	tlspilot_lock_tokens the sequence fencing tokens are drawn from
//
// Migration runs in one transaction under pg_advisory_xact_lock, so nodes
// starting at once apply each version exactly once; a node that finds the
// schema current changes nothing (a database user that may only read and
// write rows can use a migrated database). A schema newer than this
// tlspilot knows is refused. Keys are checked with storage.CheckKey before
// any query (List leaves out, and logs once, a row another role wrote
// under a key CheckKey refuses and the table's CHECK lets through, such
// as a ".." segment) and kept in a column with the "C" collation, so they sort and
// compare byte by byte as in fsstore; List selects a folder with a range
// (prefix+"/" <= key < prefix+"0", '0' being the byte after '/'), never
// LIKE, so '_' and '%' carry no special meaning.
//
// # Locks and fencing
//
// A lock is a row of tlspilot_locks. Lock inserts it, or takes over a row
// whose expires has passed, with a fresh fencing token from a sequence:
// tokens only grow, so a later holder of a lock always has a larger token
// than every earlier one. Expiry is judged by the database's clock alone
// (clock_timestamp() in every statement), never by a node's: a node whose
// clock is wrong neither takes a lock over early nor keeps one late. A
// live holder renews its lease in the background every RenewInterval
// (expires = clock_timestamp() + LeaseTTL, only while its token is there
// and unexpired); a lease that cannot be renewed before it expires by the
// node's own clock, counted from the moment its last renewal was sent, is
// reported lost (Done closed, Err wraps storage.ErrLockLost). That local
// expiry is never later than the database's, so a holder gives up no later
// than others may take over.
//
// A lease alone cannot stop a holder that paused (a stopped process, a
// long garbage collection, a network partition) from writing after its
// lease ran out and another node took the lock over. So a Store or Delete
// whose ctx carries a lease of this package (storage.WithLease) runs in
// one transaction that first reads the lock's row FOR SHARE and goes on
// only if the row still holds the lease's token and has not expired by the
// database's clock; otherwise nothing is written and the error wraps
// storage.ErrLockLost (and the lease is marked lost). FOR SHARE makes a
// concurrent takeover wait until the write committed, and a write that
// comes after the takeover sees the new token: the old holder's write
// either lands before the new holder got the lock, or not at all. The
// token is stored with the value (column token), and a lease of this
// package reports it through a Token() int64 method. Writes with no lease in
// ctx are not fenced; tlspilot passes the lease with every write it makes
// under a certificate's or account's lock.
//
// # Notifications
//
// Every Store and Delete sends, in the same statement, a NOTIFY on the
// channel tlspilot_kv with the key as payload; PostgreSQL delivers it when
// the write commits, to every session of the same database that LISTENs.
// Watch (storage.Watcher) LISTENs on a connection of its own and wakes the
// watchers of that key, so a node puts in service within milliseconds a
// certificate another node stored. Notifications sent while that
// connection is down are lost: Watch then wakes every watcher when it
// reconnects, and its users keep a periodic check besides.
//
// # Connections and passwords
//
// Options.URL is anything pgx.ParseConfig accepts (postgres:// or
// postgresql:// URLs, keyword/value strings), with libpq's environment
// variables (PGHOST, PGSSLMODE, ...) and password sources: PGPASSWORD and
// the passfile (PGPASSFILE, default ~/.pgpass). The tlspilot config
// refuses a password written in the URL; the package itself does not.
//
// Private keys reach the database only encrypted with the key-encryption
// key, which each node reads from a local file (see the kek_file setting):
// a dump of the database alone yields no usable private key.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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

// Options configures a Store. Only URL is required.
type Options struct {
	// URL says which database to use: a postgres:// or postgresql:// URL
	// or a keyword/value string, as pgx.ParseConfig reads them (with
	// libpq's environment variables and passfile).
	URL string

	// LeaseTTL is how long a lease lasts unless renewed; 0 means
	// DefaultLeaseTTL. It is counted by the database's clock.
	LeaseTTL time.Duration

	// RenewInterval is how often a held lease is renewed; 0 means
	// LeaseTTL/3. A negative value means never renew, so leases expire
	// after LeaseTTL: tests use it to play a holder that died or froze.
	// It must be shorter than LeaseTTL.
	RenewInterval time.Duration

	// PollInterval is how often a Lock waiting for a held lock tries again
	// (plus up to 20% random jitter); 0 means DefaultPollInterval.
	PollInterval time.Duration

	// Owner names this process in the locks table, for people reading
	// it; "" means "hostname:pid:random".
	Owner string

	// MaxConns bounds the connections to the database; 0 means pgxpool's
	// default (the larger of 4 and the number of CPUs), or pool_max_conns
	// in URL.
	MaxConns int32

	// Logger receives lock events (lost, renewal failures) and schema
	// migrations; nil discards them.
	Logger *slog.Logger
}

// Store is a storage.Storage kept in a PostgreSQL database. It is safe for
// concurrent use by several goroutines and by several processes on any
// number of machines sharing the database. Create it with New and release
// it with Close.
type Store struct {
	pool  *pgxpool.Pool
	ttl   time.Duration
	renew time.Duration // < 0: never renew
	poll  time.Duration
	owner string
	log   *slog.Logger

	closing   chan struct{} // closed by Close: leases stop renewing
	ctx       context.Context
	cancel    context.CancelFunc // called by Close: renewals under way stop
	closeOnce sync.Once
	leases    sync.WaitGroup // renewal goroutines
	bg        sync.WaitGroup // the listening goroutine (watch.go)
	hub       hub            // watchers of keys (Watch)
	foreign   sync.Map       // keys of rows List left out and logged
}

// New connects to the database opts.URL names, creates or migrates its
// tables (see the package documentation) and returns a Store on it. ctx
// bounds the connection and the migration, not the Store's life.
func New(ctx context.Context, opts Options) (*Store, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{
		pool:    pool,
		ttl:     opts.LeaseTTL,
		renew:   opts.RenewInterval,
		poll:    opts.PollInterval,
		owner:   opts.Owner,
		log:     opts.Logger,
		closing: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.migrate(ctx); err != nil {
		s.cancel()
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", describe(cfg), err)
	}
	return s, nil
}

// describe names the database of cfg for error messages, without its
// password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %s on %s:%d as %s", c.Database, c.Host, c.Port, c.User)
}

// Close stops renewing the leases still held (they are reported lost),
// closes the channels Watch returned and the connections. Calls after the
// first do nothing.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		s.leases.Wait()
		s.bg.Wait()
		s.hub.close()
		s.pool.Close()
	})
}

// withDefaults fills in the zero fields of opts and rejects bad values.
func withDefaults(opts Options) (Options, error) {
	if opts.URL == "" {
		return opts, errors.New("options: URL is empty")
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < time.Millisecond {
		return opts, fmt.Errorf("options: LeaseTTL %s is shorter than a millisecond", opts.LeaseTTL)
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
	if opts.MaxConns < 0 {
		return opts, fmt.Errorf("options: negative MaxConns %d", opts.MaxConns)
	}
	if opts.Owner == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown"
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails: crypto/rand.Read crashes the program instead
		opts.Owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

var _ storage.Storage = (*Store)(nil)
