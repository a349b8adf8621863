package renewal

import "time"

// Default retry bounds used when the corresponding Backoff field is zero
// or negative.
const (
	DefaultBackoffMin = time.Minute
	DefaultBackoffMax = 6 * time.Hour
)

// Backoff is the retry policy after a failed attempt. The zero value is
// ready to use: a Min or Max that is zero (or negative) means
// DefaultBackoffMin (1 minute) or DefaultBackoffMax (6 hours). If Min
// exceeds Max, every delay is Max.
type Backoff struct{ Min, Max time.Duration }

// Next returns when to retry after the attempt-th consecutive failure
// (attempt >= 1; smaller values count as 1), never earlier than retryAfter
// (zero = none).
//
// The base delay is d = Min * 2^(attempt-1), capped at Max without
// overflow for any attempt. The result is now plus a uniformly random
// delay in [d/2, d] ("equal jitter"), or retryAfter if that is later.
func (b Backoff) Next(now time.Time, attempt int, retryAfter time.Time, rnd Rand) time.Time {
	d := b.delay(attempt)
	half := d / 2
	next := now.Add(half + time.Duration(rnd.sample()*float64(d-half)))
	if retryAfter.After(next) {
		return retryAfter
	}
	return next
}

// delay returns the un-jittered delay after the attempt-th failure.
func (b Backoff) delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	d := min(lo, hi)
	// d at least doubles each step until it reaches hi, so this loop runs
	// at most ~63 times whatever attempt is.
	for i := 1; i < attempt && d < hi; i++ {
		if d > hi/2 {
			return hi
		}
		d *= 2
	}
	return d
}
