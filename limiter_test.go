package tlspilot

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestLimiter: a burst of n orders goes at once, then orders are spaced
// window/n apart, and a waiting order gives up when its context ends.
func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, window = 300, 3 * time.Hour
		l := newLimiter(n, window)
		start := time.Now()
		ctx := context.Background()
		for i := range n {
			if err := l.wait(ctx); err != nil {
				t.Fatal(err)
			}
			if time.Since(start) != 0 {
				t.Fatalf("order %d of the burst waited %v", i, time.Since(start))
			}
		}
		for i := 1; i <= 5; i++ {
			if err := l.wait(ctx); err != nil {
				t.Fatal(err)
			}
			want := time.Duration(i) * window / n
			if got := time.Since(start); got < want-time.Millisecond || got > want+time.Millisecond {
				t.Errorf("order %d after the burst at %v, want %v", i, got, want)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := l.wait(cctx); err == nil {
			t.Error("wait did not give up when its context ended")
		}
		// Over a whole window no more than n orders pass (plus the burst).
		l2 := newLimiter(n, window)
		count := 0
		deadline := time.Now().Add(window)
		for time.Now().Before(deadline) {
			if err := l2.wait(ctx); err != nil {
				t.Fatal(err)
			}
			count++
		}
		if count > 2*n+1 {
			t.Errorf("%d orders in one window, limit %d (+ burst %d)", count, n, n)
		}
	})
}
