package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

const (
	// minRetry is the shortest wait before retrying a failed renewal.
	minRetry = 10 * time.Millisecond
	// unlockTimeout bounds Unlock's statement.
	unlockTimeout = 10 * time.Second
)

// errNotRenewed says that the database found the lease expired or gone
// when it was to be renewed.
var errNotRenewed = errors.New("lease expired or taken over before it could be renewed")

// lease is a held lock. A background goroutine (keep) renews it until
// Unlock, until it is lost, or until the Store is closed.
type lease struct {
	store *Store
	name  string
	token int64 // the fencing token

	stop    chan struct{} // closed by Unlock to stop keep
	stopped chan struct{} // closed when keep returns
	unlock  sync.Once

	mu      sync.Mutex
	expires time.Time // by this node's clock, never later than the database's
	err     error     // why the lease was lost
	done    chan struct{}
	ended   bool // done is closed
}

// startLease returns the lease just taken with token, expiring at expires
// by this node's clock, and starts renewing it.
func (s *Store) startLease(name string, token int64, expires time.Time) *lease {
	l := &lease{
		store:   s,
		name:    name,
		token:   token,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		expires: expires,
		done:    make(chan struct{}),
	}
	s.leases.Add(1)
	go l.keep()
	return l
}

// Unlock stops renewing the lease and deletes the lock's row if it still
// holds this lease's token. See Store.Lock.
func (l *lease) Unlock(ctx context.Context) error {
	first := false
	l.unlock.Do(func() { first = true })
	if !first {
		return nil
	}
	close(l.stop)
	<-l.stopped
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	_, delErr := l.store.pool.Exec(ctx, unlockSQL, l.name, l.token)

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.ended = true
		close(l.done)
	}
	if l.err != nil {
		return l.err
	}
	if delErr != nil {
		return fmt.Errorf("pgstore: unlock %s: %w", l.name, delErr)
	}
	return nil
}

// Done is closed when the lease ends: after Unlock, or when it was lost.
func (l *lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lease is held and after a clean Unlock, and wraps
// storage.ErrLockLost once the lease was lost.
func (l *lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Expires reports when the lease runs out unless renewed, by this node's
// clock: the time the last renewal (or the Lock) was sent plus LeaseTTL,
// never later than the expiry the database recorded.
func (l *lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Token returns the lease's fencing token, which grows with every holder
// of any lock.
func (l *lease) Token() int64 { return l.token }

// keep renews the lease every RenewInterval until Unlock or Close, or
// marks it lost. With renewal switched off it only marks the lease lost at
// its expiry.
func (l *lease) keep() {
	defer l.store.leases.Done()
	defer close(l.stopped)
	wait := l.store.renew
	if wait < 0 {
		wait = time.Until(l.Expires())
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.store.closing:
			l.lose(errors.New("storage closed"))
			return
		case <-t.C:
		}
		next, err := l.tick()
		if err != nil {
			l.lose(err)
			return
		}
		t.Reset(next)
	}
}

// tick renews the lease once (or, with renewal off, checks its expiry) and
// says when to run again. An error means the lease is lost.
func (l *lease) tick() (time.Duration, error) {
	s := l.store
	exp := l.Expires()
	left := time.Until(exp)
	if s.renew < 0 {
		if left > 0 {
			return left, nil
		}
		return 0, fmt.Errorf("lease expired at %s, renewal is off", exp.Format(time.RFC3339Nano))
	}
	if left <= 0 {
		return 0, fmt.Errorf("lease expired at %s before it could be renewed", exp.Format(time.RFC3339Nano))
	}
	err := l.renewOnce(left)
	switch {
	case err == nil:
		return s.renew, nil
	case errors.Is(err, errNotRenewed):
		return 0, err
	}
	s.log.Warn("pgstore: renewing lock failed, will retry", "lock", l.name, "err", err)
	return max(min(s.renew, time.Until(exp)/2), minRetry), nil
}

// renewOnce extends the lease in the database, waiting at most left.
func (l *lease) renewOnce(left time.Duration) error {
	s := l.store
	ctx, cancel := context.WithTimeout(s.ctx, left)
	defer cancel()
	sent := time.Now()
	tag, err := s.pool.Exec(ctx, renewSQL, l.name, l.token, s.ttl.Microseconds())
	switch {
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return errNotRenewed
	}
	l.mu.Lock()
	l.expires = sent.Add(s.ttl)
	l.mu.Unlock()
	return nil
}

// lose ends the lease with err, unless it already ended.
func (l *lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	if !errors.Is(err, storage.ErrLockLost) {
		err = fmt.Errorf("%w: %w", storage.ErrLockLost, err)
	}
	l.err = fmt.Errorf("pgstore: lease on %s (token %d): %w", l.name, l.token, err)
	l.ended = true
	close(l.done)
	l.store.log.Warn("pgstore: lock lost", "lock", l.name, "token", l.token, "err", err)
}

var _ storage.Lease = (*lease)(nil)
