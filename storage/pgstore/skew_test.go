package pgstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// TestPostgresLockSkewedNodeClock: a lease taken by a node whose clock is
// 26 years slow (inside a synctest bubble, time.Now reads 2000-01-01)
// expires by the database's clock, LeaseTTL after it was taken: another
// node with a right clock cannot take it over before (a lease judged by
// the slow node's clock would look expired for 26 years) and takes it
// over once it expired (the slow node died without unlocking).
func TestPostgresLockSkewedNodeClock(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const ttl = 4 * time.Second
	synctest.Test(t, func(t *testing.T) {
		slow, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL, LeaseTTL: ttl, RenewInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close() // dies holding the lock: its row stays
		l, err := slow.Lock(t.Context(), "issue/skew")
		if err != nil {
			t.Fatal(err)
		}
		if y := l.Expires().Year(); y != 2000 {
			t.Fatalf("the slow node's own expiry is in %d, want 2000: no skew", y)
		}
		left := query[float64](t, pg.URL, `SELECT extract(epoch FROM expires - clock_timestamp())::float8 FROM tlspilot_locks WHERE name = 'issue/skew'`)
		if len(left) != 1 || left[0] <= 0 || left[0] > ttl.Seconds() {
			t.Fatalf("lease row expires in %v s by the database's clock, want within (0, %v]", left, ttl.Seconds())
		}
	})
	taken := time.Now() // by a right clock, just after the slow node took the lock
	right := open(t, pg.URL, time.Hour, true)
	// A try of a second, well before the lease's end even on a loaded
	// machine.
	early, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := right.Lock(early, "issue/skew"); err == nil {
		t.Fatalf("lease of the slow node taken over within %v of a %v lease", time.Since(taken), ttl)
	}
	l, err := right.Lock(t.Context(), "issue/skew")
	if err != nil {
		t.Fatalf("lease of the slow node not taken over after it expired: %v", err)
	}
	defer l.Unlock(context.Background())
	if waited := time.Since(taken); waited > ttl+5*time.Second {
		t.Errorf("lease of %v taken over after %v", ttl, waited)
	}
}
