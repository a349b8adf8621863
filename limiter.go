package tlspilot

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket bounding new orders per window: it holds at
// most n tokens and gains n per window.
type limiter struct {
	mu     sync.Mutex
	n      float64
	per    time.Duration
	tokens float64
	last   time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: float64(n), per: window, tokens: float64(n), last: time.Now()}
}

// wait takes a token, waiting for one if none is left.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.n, l.tokens+now.Sub(l.last).Seconds()*l.n/l.per.Seconds())
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - l.tokens) * float64(l.per) / l.n)
		l.mu.Unlock()
		t := time.NewTimer(need)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
