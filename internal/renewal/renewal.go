// Package renewal decides when certificates are renewed and when failed
// attempts are retried. It is pure timing policy: it performs no I/O and
// never reads the clock itself; callers pass the times in.
package renewal

import (
	"math"
	"math/rand/v2"
	"time"
)

// ShortLifetime is the lifetime below which half, not a third, of the
// lifetime is left at renewal (10 days).
const ShortLifetime = 10 * 24 * time.Hour

// jitterFraction is the width of the ratio-rule jitter window, as a
// fraction of the certificate lifetime.
const jitterFraction = 15

// Window is a suggested renewal window (RFC 9773 ARI).
type Window struct{ Start, End time.Time }

// usable reports whether w is present and well formed: both ends set and
// End strictly after Start.
func (w *Window) usable() bool {
	return w != nil && !w.Start.IsZero() && !w.End.IsZero() && w.End.After(w.Start)
}

// Rand returns a uniformly random float in [0,1); callers pass rand.Float64
// (math/rand/v2) or a fixed value in tests. A nil Rand means rand.Float64.
// Values outside [0,1) (including NaN) are clamped into it.
type Rand func() float64

// sample draws one value from rnd, clamped to [0,1).
func (rnd Rand) sample() float64 {
	if rnd == nil {
		rnd = rand.Float64
	}
	f := rnd()
	if !(f > 0) { // also catches NaN
		return 0
	}
	if f >= 1 {
		return math.Nextafter(1, 0)
	}
	return f
}

// Due returns when a certificate valid from notBefore to notAfter should be
// renewed.
//
// If ari is usable (non-nil, both ends non-zero, End after Start), Due
// returns a uniformly random time in [ari.Start, ari.End) as RFC 9773
// §4.2 asks; the CA's window is followed even if it lies outside the
// certificate's validity. A malformed window is ignored.
//
// Otherwise the ratio rule applies: with lifetime L = notAfter - notBefore,
// renewal is due when a third of L remains (half of L when L is shorter
// than ShortLifetime), jittered uniformly over the L/15 before that point,
// so the result is never later than the third (half) point.
//
// If L <= 0 (the validity is empty or inverted) Due returns notBefore, a
// time that is already past for any certificate in use, meaning "renew
// now". A result in the past always means renewal is overdue.
func Due(notBefore, notAfter time.Time, ari *Window, rnd Rand) time.Time {
	if ari.usable() {
		return pick(ari.Start, ari.End, rnd)
	}
	lifetime := notAfter.Sub(notBefore)
	if lifetime <= 0 {
		return notBefore
	}
	remaining := lifetime / 3
	if lifetime < ShortLifetime {
		remaining = lifetime / 2
	}
	end := notAfter.Add(-remaining)
	return pick(end.Add(-lifetime/jitterFraction), end, rnd)
}

// pick returns a uniformly random time in [start, end), or end if the
// interval is empty.
func pick(start, end time.Time, rnd Rand) time.Time {
	width := end.Sub(start)
	if width <= 0 {
		return end
	}
	off := time.Duration(rnd.sample() * float64(width))
	// float64 rounding can land on width itself for very wide windows.
	off = min(max(off, 0), width-1)
	return start.Add(off)
}
