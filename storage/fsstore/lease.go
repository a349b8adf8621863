package fsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// minRetry is the shortest wait before retrying a failed renewal.
const minRetry = 10 * time.Millisecond

// lease is a held lock. A background goroutine (keep) renews it until
// Unlock, or until it is lost.
type lease struct {
	store *Store
	name  string
	path  string
	token string

	stop    chan struct{} // closed by Unlock to stop keep
	stopped chan struct{} // closed when keep returns
	unlock  sync.Once

	mu      sync.Mutex
	expires time.Time
	err     error         // why the lease was lost
	done    chan struct{} // closed when the lease ends
	ended   bool          // done is closed
}

// startLease returns the lease on a lock file just created with token, and
// starts renewing it.
func (s *Store) startLease(name, path, token string, expires time.Time) *lease {
	l := &lease{
		store:   s,
		name:    name,
		path:    path,
		token:   token,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		expires: expires,
		done:    make(chan struct{}),
	}
	go l.keep()
	return l
}

// Unlock stops renewing the lease and removes the lock file if it still
// holds this lease's token. It ignores ctx: it only does a few quick local
// file operations, and must also work from a deferred call after ctx ended.
// If the lease had been lost, it returns an error wrapping
// storage.ErrLockLost. Calls after the first return nil.
func (l *lease) Unlock(context.Context) error {
	first := false
	l.unlock.Do(func() { first = true })
	if !first {
		return nil
	}
	close(l.stop)
	<-l.stopped
	_, rmErr := l.store.removeIfGen(l.path, l.token, false)

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.ended = true
		close(l.done)
	}
	if l.err != nil {
		return l.err
	}
	if rmErr != nil {
		return fmt.Errorf("fsstore: unlock %s: %w", l.name, rmErr)
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

// Expires reports when the lease runs out unless renewed.
func (l *lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// keep renews the lease every RenewInterval until Unlock, or marks it lost.
// With renewal switched off it only marks the lease lost at its expiry.
func (l *lease) keep() {
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
		return 0, fmt.Errorf("lease expired at %s, renewal is off: %w",
			exp.Format(time.RFC3339Nano), storage.ErrLockLost)
	}
	err := l.renew()
	switch {
	case err == nil:
		return s.renew, nil
	case errors.Is(err, storage.ErrLockLost):
		return 0, err
	case left <= 0:
		return 0, fmt.Errorf("%w: renew: %w", storage.ErrLockLost, err)
	}
	s.log.Warn("fsstore: renewing lock failed, will retry", "lock", l.name, "err", err)
	return max(min(s.renew, left/2), minRetry), nil
}

// renew replaces the lock file with one that has a later expiry, if it still
// holds our token and our lease has not expired yet.
func (l *lease) renew() error {
	s := l.store
	st, err := s.inspect(l.path)
	switch {
	case notExist(err):
		return fmt.Errorf("lock file is gone: %w", storage.ErrLockLost)
	case err != nil:
		return err
	case st.gen != l.token:
		return fmt.Errorf("lock taken over by %q: %w", st.owner, storage.ErrLockLost)
	}
	now := time.Now()
	if !now.Before(l.Expires()) {
		return fmt.Errorf("lease expired before it could be renewed: %w", storage.ErrLockLost)
	}
	exp := now.Add(s.ttl)
	data, err := json.Marshal(lockRecord{Owner: s.owner, Token: l.token, Expires: exp.UTC()})
	if err != nil {
		return err
	}
	if err := writeAtomic(l.path, data, grant{}, false); err != nil {
		return err
	}
	l.mu.Lock()
	l.expires = exp
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
	l.err = fmt.Errorf("fsstore: lease on %s: %w", l.name, err)
	l.ended = true
	close(l.done)
	l.store.log.Warn("fsstore: lock lost", "lock", l.name, "err", err)
}

var _ storage.Lease = (*lease)(nil)
