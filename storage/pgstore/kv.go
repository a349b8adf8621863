package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/storage"
)

// SQL of the key/value methods. Comparisons name the "C" collation, so
// keys compare byte by byte whatever the database's default.
const (
	loadSQL = `SELECT value FROM tlspilot_kv WHERE key = $1`
	// storeSQL and deleteSQL tell listening nodes about the key they
	// changed (notifyChannel), in the same statement: the notification is
	// sent when the write commits, and never for a write rolled back.
	storeSQL = `WITH w AS (INSERT INTO tlspilot_kv (key, value, token) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, token = EXCLUDED.token, updated = clock_timestamp()
		RETURNING key)
		SELECT pg_notify('` + notifyChannel + `', key) FROM w`
	deleteSQL = `WITH d AS (DELETE FROM tlspilot_kv WHERE key = $1 RETURNING key)
		SELECT pg_notify('` + notifyChannel + `', key) FROM d`
	listAll   = `SELECT key FROM tlspilot_kv ORDER BY key COLLATE "C"`
	listRange = `SELECT key FROM tlspilot_kv WHERE key >= $1 COLLATE "C" AND key < $2 COLLATE "C" ORDER BY key COLLATE "C"`
	// leaseSQL reads a lock's row and locks it against a takeover until
	// the transaction ends.
	leaseSQL = `SELECT token, expires > clock_timestamp(), expires FROM tlspilot_locks WHERE name = $1 FOR SHARE`
)

// Load returns the value stored under key, or an error wrapping
// fs.ErrNotExist.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	var v []byte
	err := s.pool.QueryRow(ctx, loadSQL, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("pgstore: load %s: %w", key, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("pgstore: load %s: %w", key, err)
	case v == nil:
		v = []byte{}
	}
	return v, nil
}

// Store saves value under key in one statement (one transaction when ctx
// carries a lease: see the package documentation). Once it returns nil,
// the value is committed.
func (s *Store) Store(ctx context.Context, key string, value []byte) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("pgstore: store: %w", err)
	}
	if value == nil {
		value = []byte{} // nil would be NULL
	}
	l := leaseIn(ctx)
	if l == nil {
		if _, err := s.pool.Exec(ctx, storeSQL, key, value, nil); err != nil {
			return fmt.Errorf("pgstore: store %s: %w", key, err)
		}
		return nil
	}
	err := s.underLease(ctx, l, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, storeSQL, key, value, l.token)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: store %s: %w", key, err)
	}
	return nil
}

// Delete removes key; a missing key is no error. A lease in ctx fences it
// as it does Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return fmt.Errorf("pgstore: delete: %w", err)
	}
	var err error
	if l := leaseIn(ctx); l != nil {
		err = s.underLease(ctx, l, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, deleteSQL, key)
			return err
		})
	} else {
		_, err = s.pool.Exec(ctx, deleteSQL, key)
	}
	if err != nil {
		return fmt.Errorf("pgstore: delete %s: %w", key, err)
	}
	return nil
}

// List returns the keys below prefix+"/", sorted byte by byte; every key
// if prefix is empty. Rows whose key is not a valid key (written by
// another database role) are left out and logged.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	var rows pgx.Rows
	var err error
	if prefix == "" {
		rows, err = s.pool.Query(ctx, listAll)
	} else {
		if err := storage.CheckKey(prefix); err != nil {
			return nil, fmt.Errorf("pgstore: list: %w", err)
		}
		// '0' is the byte after '/': the range holds exactly the keys
		// starting with prefix+"/".
		rows, err = s.pool.Query(ctx, listRange, prefix+"/", prefix+"0")
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", prefix, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", prefix, err)
	}
	// The table's CHECK lets through "." and ".." segments and segments
	// longer than a file name, which only another role writes: skipped,
	// as fsstore skips files whose names are not keys, since every method
	// refuses them; each is logged once.
	return slices.DeleteFunc(keys, func(k string) bool {
		if err := storage.CheckKey(k); err != nil {
			if _, seen := s.foreign.LoadOrStore(k, true); !seen {
				s.log.Warn("pgstore: a row of tlspilot_kv is not a key tlspilot writes; it is left out", "error", err)
			}
			return true
		}
		return false
	}), nil
}

// leaseIn returns the lease of this package that storage.WithLease put in
// ctx, or nil (also for another backend's lease).
func leaseIn(ctx context.Context) *lease {
	l, _ := storage.LeaseFrom(ctx).(*lease)
	return l
}

// underLease runs write in a transaction that first checks, holding the
// lock's row FOR SHARE, that l is still the lock's current, unexpired
// lease by the database's clock. If it is not, write is not run, l is
// marked lost and the error wraps storage.ErrLockLost.
func (s *Store) underLease(ctx context.Context, l *lease, write func(pgx.Tx) error) error {
	var fenced error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if fenced = l.check(ctx, tx); fenced != nil {
			return fenced
		}
		return write(tx)
	})
	if fenced != nil {
		l.lose(fenced)
	}
	return err
}

// check returns nil if the lock's row in tx holds l's token and has not
// expired, and otherwise an error wrapping storage.ErrLockLost that says
// what happened to the lease.
func (l *lease) check(ctx context.Context, tx pgx.Tx) error {
	var token int64
	var live bool
	var expires time.Time
	err := tx.QueryRow(ctx, leaseSQL, l.name).Scan(&token, &live, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("write under lock %s rejected: its lease (token %d) was released: %w", l.name, l.token, storage.ErrLockLost)
	case err != nil:
		return err
	case token != l.token:
		return fmt.Errorf("write under lock %s rejected: its lease (token %d) was taken over by token %d: %w", l.name, l.token, token, storage.ErrLockLost)
	case !live:
		return fmt.Errorf("write under lock %s rejected: its lease (token %d) expired at %s by the database's clock: %w", l.name, l.token, expires.UTC().Format(time.RFC3339Nano), storage.ErrLockLost)
	}
	return nil
}
