package acmeclient

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// pollMargin is how long, past Config.PollTimeout, a wait for an order or
// an authorization may still take before its context ends it: one more
// request, which may take up to requestTimeout. It is a backstop: the
// waits themselves stop polling at the poll timeout.
const pollMargin = requestTimeout

// requestTimeout bounds one HTTP request to the CA, answer included.
const requestTimeout = 60 * time.Second

// pollContext returns ctx bounded to the poll timeout plus pollMargin,
// for a wait for what (an order, an authorization). When that bound ends
// the wait, context.Cause of the returned context says so, and wraps
// context.DeadlineExceeded.
func (c *Client) pollContext(ctx context.Context, what string) (context.Context, context.CancelFunc) {
	d := c.pollTimeout + pollMargin
	cause := fmt.Errorf("gave up waiting for the %s after %v (poll timeout %v plus %v): %w",
		what, d, c.pollTimeout, pollMargin, context.DeadlineExceeded)
	return context.WithTimeoutCause(ctx, d, cause)
}

// pollErr returns the cause set by pollContext if that bound ended ctx
// and so err, and err otherwise (the caller's own context ended, or
// something else failed).
func pollErr(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause != nil && cause != ctx.Err() && errors.Is(err, context.DeadlineExceeded) {
		return cause
	}
	return err
}

// pollDelay is how long to wait before the next poll of a resource the CA
// is still working on, given the Retry-After value v of its latest answer
// (RFC 8555 §7.4, §7.5.1): the CA's delay, at most hi (the poll timeout).
// ok is false when v is empty, unreadable, or asks for no more than lo
// (the poll interval, which then applies): 0 or a date in the past must
// not make the client poll in a tight loop.
func pollDelay(v string, now time.Time, lo, hi time.Duration) (d time.Duration, ok bool) {
	at, ok := parseRetryAfter(v, now)
	if !ok {
		return 0, false
	}
	d = at.Sub(now)
	if d <= lo {
		return 0, false
	}
	return min(d, hi), true
}

// pollWait is how long WaitAuthz waits before its next poll at now: the
// longer of its own delay and the CA's Retry-After (retryAt, zero if the
// CA gave none), but not past the deadline, so that the last poll comes
// at the deadline rather than after it.
func pollWait(now time.Time, delay time.Duration, retryAt, deadline time.Time) time.Duration {
	w := max(delay, retryAt.Sub(now))
	return max(min(w, deadline.Sub(now)), 0)
}
