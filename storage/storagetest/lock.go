package storagetest

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// lockResult is what a Lock call running in a goroutine returned.
type lockResult struct {
	lease storage.Lease
	err   error
}

// lockAsync calls s.Lock(ctx, name) in a goroutine and delivers the result
// on the returned channel. A lease delivered but never received is unlocked
// at the end of the test.
func lockAsync(t *testing.T, ctx context.Context, s storage.Storage, name string) <-chan lockResult {
	t.Helper()
	ch := make(chan lockResult, 1)
	t.Cleanup(func() {
		select {
		case r := <-ch:
			if r.lease != nil {
				_ = r.lease.Unlock(context.Background())
			}
		default:
		}
	})
	go func() {
		l, err := s.Lock(ctx, name)
		ch <- lockResult{l, err}
	}()
	return ch
}

// testLockMutualExclusion has several handles increment a counter kept in
// the store under a lock, and checks no two were ever inside at once and
// no increment was lost.
func testLockMutualExclusion(t *testing.T, b Backend) {
	const workers, rounds = 4, 10
	const lockName, key = "counter", "counter/value"
	handles := make([]storage.Storage, workers)
	for i := range handles {
		handles[i] = open(t, b)
	}
	ctx := timeout(t, 5*time.Minute)
	var inside atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				if err := increment(ctx, handles[w], lockName, key, &inside); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := string(mustLoad(t, handles[0], key))
	if want := strconv.Itoa(workers * rounds); got != want {
		t.Errorf("counter = %s after %d locked increments, want %s", got, workers*rounds, want)
	}
}

// increment adds one to the counter under key while holding the lock, and
// reports an error if inside shows another holder at the same time.
func increment(ctx context.Context, s storage.Storage, lockName, key string, inside *atomic.Int32) (err error) {
	l, err := s.Lock(ctx, lockName)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := l.Unlock(ctx); err == nil {
			err = uerr
		}
	}()
	if n := inside.Add(1); n != 1 {
		return errors.New("two holders of the lock at once")
	}
	defer inside.Add(-1)
	n := 0
	v, err := s.Load(ctx, key)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(string(v)); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	time.Sleep(time.Millisecond) // widen the window for a second holder
	if err := s.Store(ctx, key, []byte(strconv.Itoa(n+1))); err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return err
	}
	return nil
}

// testLockContention checks that a held lock makes other Locks wait, that
// waiting honours ctx, that other names are independent and invisible to
// List, and that a waiting Lock proceeds after Unlock.
func testLockContention(t *testing.T, b Backend) {
	h1, h2 := open(t, b), open(t, b)
	l1 := mustLock(t, h1, "contended")
	wantList(t, h1, "", nil) // locks are not keys

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if l, err := h2.Lock(cancelled, "contended"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context while held = %v, want context.Canceled", err)
		if l != nil {
			_ = l.Unlock(t.Context())
		}
	}
	if l, err := h2.Lock(timeout(t, 200*time.Millisecond), "contended"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock with a short deadline while held = %v, want context.DeadlineExceeded", err)
		if l != nil {
			_ = l.Unlock(t.Context())
		}
	}
	for _, name := range []string{"contended/sub", "contended.other", "contende", "other"} {
		mustUnlock(t, mustLock(t, h2, name))
	}

	waiting := lockAsync(t, timeout(t, patience), h2, "contended")
	select {
	case r := <-waiting:
		t.Fatalf("second Lock returned (%v) while the lock was held", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	mustUnlock(t, l1)
	select {
	case r := <-waiting:
		if r.err != nil {
			t.Fatalf("second Lock after Unlock: %v", r.err)
		}
		mustUnlock(t, r.lease)
	case <-time.After(patience):
		t.Fatalf("second Lock did not return within %v of Unlock", patience)
	}
}

// testLockCancelWhileWaiting checks that cancelling a waiting Lock makes it
// return context.Canceled.
func testLockCancelWhileWaiting(t *testing.T, b Backend) {
	h1, h2 := open(t, b), open(t, b)
	mustLock(t, h1, "held")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	waiting := lockAsync(t, ctx, h2, "held")
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case r := <-waiting:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("Lock after cancel = %v, want context.Canceled", r.err)
		}
		if r.lease != nil {
			_ = r.lease.Unlock(t.Context())
		}
	case <-time.After(patience):
		t.Fatalf("Lock did not return within %v of its context being cancelled", patience)
	}
}

// testLeaseState checks a fresh lease: not ended, no error, expiring in the
// future but not absurdly far.
func testLeaseState(t *testing.T, b Backend) {
	s := open(t, b)
	before := time.Now()
	l := mustLock(t, s, "state")
	if err := l.Err(); err != nil {
		t.Errorf("Err of a fresh lease = %v, want nil", err)
	}
	if closed(l.Done()) {
		t.Errorf("Done of a fresh lease is closed")
	}
	if exp := l.Expires(); !exp.After(before) || exp.After(time.Now().Add(handleTTL+time.Minute)) {
		t.Errorf("Expires = %v, want after %v and within about %v", exp, before, handleTTL)
	}
}

// testLockRenewal checks that a live holder keeps its lock for several
// lease lifetimes because its lease is renewed.
func testLockRenewal(t *testing.T, b Backend) {
	const ttl = 300 * time.Millisecond
	h1, h2 := b.Open(t, ttl, true), b.Open(t, ttl, true)
	l1 := mustLock(t, h1, "renewed")
	exp0 := l1.Expires()
	start := time.Now()
	l2, err := h2.Lock(timeout(t, time.Second), "renewed")
	if err == nil {
		t.Errorf("Lock by another handle succeeded after %v, although the holder renews its %v lease", time.Since(start), ttl)
		mustUnlock(t, l2)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held and renewed = %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := l1.Err(); err != nil {
		t.Fatalf("renewed lease lost after %v: %v", time.Since(start), err)
	}
	if closed(l1.Done()) {
		t.Fatalf("Done of a renewed lease closed after %v", time.Since(start))
	}
	if exp := l1.Expires(); !exp.After(exp0) {
		t.Errorf("Expires = %v after %v, not later than at first (%v): lease not renewed", exp, time.Since(start), exp0)
	}
	mustUnlock(t, l1)
	if err := l1.Err(); err != nil {
		t.Errorf("Err after a clean Unlock = %v, want nil", err)
	}
	if !closed(l1.Done()) {
		t.Errorf("Done not closed after Unlock")
	}
	mustUnlock(t, mustLock(t, h2, "renewed"))
}

// testLockExpiredTakeover checks that a lock whose holder died is taken
// over once its lease expired and not before, that the dead holder's lease
// reports the loss, and that its late Unlock does not free the new holder's
// lock.
func testLockExpiredTakeover(t *testing.T, b Backend) {
	const ttl = 300 * time.Millisecond
	dead, live, third := b.Open(t, ttl, false), open(t, b), open(t, b)
	start := time.Now()
	l1 := mustLock(t, dead, "expiring")
	exp1 := l1.Expires()
	l2, err := live.Lock(timeout(t, patience), "expiring")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Lock of a lock whose holder died: %v", err)
	}
	t.Cleanup(func() { _ = l2.Unlock(context.Background()) })
	if now := time.Now(); now.Before(exp1) {
		t.Errorf("lock taken over at %v, before its lease expired at %v", now, exp1)
	}
	if took < ttl/2 {
		t.Errorf("lock taken over %v after it was taken with a %v lease", took, ttl)
	}
	select {
	case <-l1.Done():
	case <-time.After(patience):
		t.Fatalf("Done of the expired lease still open %v after it was taken over", patience)
	}
	if err := l1.Err(); !errors.Is(err, storage.ErrLockLost) {
		t.Errorf("Err of the expired lease = %v, want storage.ErrLockLost", err)
	}
	_ = l1.Unlock(t.Context()) // the dead holder wakes up; any result is fine
	if err := l2.Err(); err != nil {
		t.Errorf("new holder's lease lost after the old holder's Unlock: %v", err)
	}
	if l3, err := third.Lock(timeout(t, 500*time.Millisecond), "expiring"); err == nil {
		t.Errorf("a third handle took the lock: the expired holder's Unlock released the new holder's lock")
		mustUnlock(t, l3)
	}
	mustUnlock(t, l2)
}

// testUnlockIdempotent checks that Unlock ends the lease cleanly and that
// later calls do nothing and return nil.
func testUnlockIdempotent(t *testing.T, b Backend) {
	s := open(t, b)
	l := mustLock(t, s, "once")
	mustUnlock(t, l)
	if err := l.Err(); err != nil {
		t.Errorf("Err after Unlock = %v, want nil", err)
	}
	if !closed(l.Done()) {
		t.Errorf("Done not closed after Unlock")
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Errorf("second Unlock = %v, want nil", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Unlock(cancelled); err != nil {
		t.Errorf("third Unlock, with a cancelled context = %v, want nil", err)
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err after repeated Unlock = %v, want nil", err)
	}
}

// testRelockAfterUnlock checks that Unlock frees the lock at once for the
// same handle and for others, long before the lease would expire.
func testRelockAfterUnlock(t *testing.T, b Backend) {
	h1, h2 := b.Open(t, time.Minute, true), b.Open(t, time.Minute, true)
	for _, h := range []storage.Storage{h1, h1, h2, h1} {
		l, err := h.Lock(timeout(t, 10*time.Second), "again")
		if err != nil {
			t.Fatalf("Lock after Unlock (lease TTL one minute): %v", err)
		}
		mustUnlock(t, l)
	}
}
