package stapler

import (
	"context"
	"errors"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
)

// maintain keeps the item's staple current until the Stapler's context
// ends, its leaf expires or no holder is used for Options.Idle: a fresh
// response from the cache (memory, then storage) first, then a fetch at
// each response's half-life (ocspclient.Response.RefreshAt), with
// backoff after failures. An idle item is forgotten (a later handshake
// starts a new one); an expired one stays, without a goroutine, so its
// handshakes start none.
func (s *Stapler) maintain(it *item) {
	ctx := s.ctx
	if r, err := s.opts.Cache.Cached(ctx, it.leaf, it.issuer); err == nil {
		s.take(ctx, it, r)
	} else if ctx.Err() == nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("ocsp stapling: cached response unreadable", "serial", serialHex(it.leaf.SerialNumber), "names", it.names, "error", err)
	}
	for fetched := false; ; fetched = true {
		next := s.nextFetch(it, fetched)
		it.next.Store(next.UnixNano())
		if !s.sleepUntil(ctx, next) {
			s.forget(it)
			return
		}
		if now := time.Now(); now.After(it.leaf.NotAfter) {
			return
		}
		if s.idle(&it.lastUsed, time.Now()) {
			s.forget(it)
			return
		}
		s.refresh(ctx, it)
	}
}

// nextFetch returns when the item's response should next be fetched:
// now if none was taken yet, else half-way through the last one's
// validity (a revoked answer is asked again no sooner than a good one,
// an unknown one within unknownRecheck), or after the backoff of the failures
// so far, but no later than the moment the staple goes stale. Once this
// process fetched (fetched), a responder whose answers are already past
// their half-life when they arrive (precomputed long before) is asked
// again half-way through what is left, at least minRefetch later, not
// in a loop.
func (s *Stapler) nextFetch(it *item, fetched bool) time.Time {
	now := time.Now()
	if n := it.failures.Load(); n > 0 {
		at := now.Add(backoff(n, s.opts.RetryMin, s.opts.RetryMax))
		if r := it.staple.Load(); r != nil && r.Expires().Before(at) && r.Expires().After(now) {
			at = r.Expires()
		}
		return at
	}
	last := it.last.Load()
	if last == nil {
		return now
	}
	at := last.RefreshAt()
	if fetched && !at.After(now) {
		at = now.Add(max(minRefetch, last.Expires().Sub(now)/2))
	}
	if last.Status == ocspclient.Unknown && fetched {
		// A responder that does not know the certificate yet (issued
		// after it read its index) soon will: nothing is stapled
		// meanwhile, so ask again within unknownRecheck.
		if soon := now.Add(unknownRecheck); soon.Before(at) {
			at = soon
		}
	}
	return at
}

// unknownRecheck bounds the wait before asking again after an "unknown"
// answer. A variable for the tests.
var unknownRecheck = time.Minute

// minRefetch is the shortest wait between two fetches that both
// succeeded.
const minRefetch = 10 * time.Second

// backoff returns lo·2^(n-1), at most hi.
func backoff(n int64, lo, hi time.Duration) time.Duration {
	d := lo
	for i := int64(1); i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// sleepUntil waits until t; it reports false if ctx ended first.
func (s *Stapler) sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// idle reports whether lastUsed, unix seconds of the last handshake, is
// more than Options.Idle before now.
func (s *Stapler) idle(lastUsed *atomic.Int64, now time.Time) bool {
	return now.Sub(time.Unix(lastUsed.Load(), 0)) > s.opts.Idle
}

// refresh fetches a new response for the item, unless another process
// sharing the storage already did, and takes it up. An "unknown" answer
// is always asked again. A failed fetch is counted and warned about,
// saying what was wrong (ocspclient.Problem).
func (s *Stapler) refresh(ctx context.Context, it *item) {
	if r, err := s.opts.Cache.Latest(ctx, it.leaf, it.issuer); err == nil && r.RefreshAt().After(time.Now()) && r.Status != ocspclient.Unknown {
		s.take(ctx, it, r)
		return
	}
	r, err := s.opts.Cache.Refresh(ctx, it.leaf, it.issuer)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		n := it.failures.Add(1)
		it.failTotal.Add(1)
		r := it.staple.Load()
		stapling := r != nil && r.Fresh(time.Now())
		s.log.Warn("ocsp stapling: "+ocspclient.Problem(err)+", serving without a new staple", "serial", serialHex(it.leaf.SerialNumber),
			"names", it.names, "responder", it.responder, "attempt", n, "still_stapling", stapling, "error", err)
		return
	}
	s.take(ctx, it, r)
}

// take puts r in service for the item: a good response is stapled (and,
// after failed fetches, its return logged once); a revoked one is
// reported (once) and nothing is stapled; an unknown one is not stapled
// either.
func (s *Stapler) take(ctx context.Context, it *item, r *ocspclient.Response) {
	failed := it.failures.Swap(0)
	it.last.Store(r)
	switch r.Status {
	case ocspclient.Good:
		it.staple.Store(r)
		if failed > 0 {
			s.log.Info("ocsp stapling: staple obtained after failed fetches", "serial", serialHex(it.leaf.SerialNumber),
				"names", it.names, "responder", it.responder, "failures", failed)
		}
	case ocspclient.Revoked:
		it.staple.Store(nil)
		if it.revoked.CompareAndSwap(false, true) {
			s.log.Error("ocsp stapling: the responder reports this certificate revoked", "serial", serialHex(it.leaf.SerialNumber),
				"names", it.names, "revoked_at", r.RevokedAt, "reason", r.Reason)
			if s.opts.OnRevoked != nil {
				s.opts.OnRevoked(ctx, it.leaf, r.RevokedAt)
			}
		}
	default:
		it.staple.Store(nil)
		s.log.Warn("ocsp stapling: the responder does not know this certificate, no staple", "serial", serialHex(it.leaf.SerialNumber),
			"names", it.names, "responder", it.responder)
	}
}
