package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/storage"
)

// SQL of the lock methods. Every expiry is the database's clock.
const (
	// heldSQL says whether a live lease holds the lock: polling a held
	// lock reads and never writes.
	heldSQL = `SELECT expires > clock_timestamp() FROM tlspilot_locks WHERE name = $1`
	// takeSQL takes a free lock, or one whose lease expired, with a new
	// token from the sequence; it returns no row if a live lease holds it.
	takeSQL = `INSERT INTO tlspilot_locks AS l (name, owner, token, expires)
		VALUES ($1, $2, nextval('tlspilot_lock_tokens'), clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE
			SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires = EXCLUDED.expires
			WHERE l.expires <= clock_timestamp()
		RETURNING token`
	// renewSQL extends a lease that is still this one and unexpired.
	renewSQL = `UPDATE tlspilot_locks SET expires = clock_timestamp() + $3 * interval '1 microsecond'
		WHERE name = $1 AND token = $2 AND expires > clock_timestamp()`
	// unlockSQL frees the lock only if this lease still holds it.
	unlockSQL = `DELETE FROM tlspilot_locks WHERE name = $1 AND token = $2`
)

// Lock waits until the lock called name is free, or held under a lease
// expired by the database's clock, takes it with a new fencing token and
// returns its lease, renewed in the background until Unlock. It polls
// every PollInterval and returns an error wrapping ctx.Err() if ctx ends
// first.
//
// The lease's Unlock frees the lock only if it still holds the lease's
// token; it is not bounded by its ctx's end (a deferred Unlock after ctx
// ended still frees the lock), only by a 10-second timeout. On a lease
// that was lost it returns an error wrapping storage.ErrLockLost.
func (s *Store) Lock(ctx context.Context, name string) (storage.Lease, error) {
	if err := storage.CheckKey(name); err != nil {
		return nil, fmt.Errorf("pgstore: lock: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("pgstore: lock %s: %w", name, err)
		}
		l, err := s.tryLock(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("pgstore: lock %s: %w", name, err)
		}
		if l != nil {
			return l, nil
		}
		t := time.NewTimer(s.poll + rand.N(s.poll/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("pgstore: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// tryLock takes the lock if no live lease holds it, and returns nil
// otherwise.
func (s *Store) tryLock(ctx context.Context, name string) (*lease, error) {
	var live bool
	err := s.pool.QueryRow(ctx, heldSQL, name).Scan(&live)
	switch {
	case err == nil && live:
		return nil, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	sent := time.Now()
	var token int64
	err = s.pool.QueryRow(ctx, takeSQL, name, s.owner, s.ttl.Microseconds()).Scan(&token)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil // taken by another in between
	case err != nil:
		return nil, err
	}
	return s.startLease(name, token, sent.Add(s.ttl)), nil
}
