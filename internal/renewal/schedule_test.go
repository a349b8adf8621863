package renewal

import (
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

// TestScheduleLoop runs a tiny renewal loop in a synctest bubble: each
// turn sleeps until Due of a fresh 90-day certificate, so months of fake
// time pass instantly.
func TestScheduleLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lifetime = 90 * 24 * time.Hour
		start := time.Now()
		notBefore := start
		for turn := range 3 {
			notAfter := notBefore.Add(lifetime)
			due := Due(notBefore, notAfter, nil, rand.Float64)
			time.Sleep(time.Until(due))
			now := time.Now()
			if now.Before(due) {
				t.Fatalf("turn %d: woke at %v, before due %v", turn, now, due)
			}
			if waited := now.Sub(notBefore); waited < 54*24*time.Hour || waited > 60*24*time.Hour {
				t.Fatalf("turn %d: waited %v, want 54 to 60 days", turn, waited)
			}
			if left := notAfter.Sub(now); left < 30*24*time.Hour {
				t.Fatalf("turn %d: renewed with %v left, want at least 30 days", turn, left)
			}
			notBefore = now // "renewed": the new certificate starts now
		}
		if total := time.Since(start); total < 3*54*24*time.Hour {
			t.Errorf("total fake time %v, want at least 162 days", total)
		}
	})
}

// TestBackoffRetryLoop simulates ten failed attempts retried on Backoff.Next
// in a background goroutine and checks the total fake time elapsed.
func TestBackoffRetryLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 10
		errTransient := errors.New("transient failure")
		attempt := func(n int) error {
			if n <= failures {
				return errTransient
			}
			return nil
		}
		start := time.Now()
		done := make(chan int)
		go func() {
			var b Backoff
			n := 1
			for attempt(n) != nil {
				time.Sleep(time.Until(b.Next(time.Now(), n, time.Time{}, rand.Float64)))
				n++
			}
			done <- n
		}()
		n := <-done
		elapsed := time.Since(start)
		if n != failures+1 {
			t.Fatalf("succeeded on attempt %d, want %d", n, failures+1)
		}
		// Delays 1m,2m,...,256m then capped at 6h: 511m+360m = 871m at most,
		// and at least half of that with equal jitter.
		lo, hi := 871*time.Minute/2, 871*time.Minute
		if elapsed < lo || elapsed > hi {
			t.Errorf("elapsed fake time %v, want in [%v, %v]", elapsed, lo, hi)
		}
	})
}
