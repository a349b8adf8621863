package acmeclient

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// maxRetryAfter is the longest a Retry-After is followed: 7 days. A CA
// asking for more (ten years, by mistake or malice) is asked again after
// a week, so that a certificate in service is retried before it expires.
const maxRetryAfter = 7 * 24 * time.Hour

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): a
// non-negative number of delay seconds or an HTTP date. Either form is
// capped at maxRetryAfter from now; a date in the past is returned as it
// is. ok is false for an empty or unreadable value.
func parseRetryAfter(v string, now time.Time) (at time.Time, ok bool) {
	if v == "" {
		return time.Time{}, false
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) { // digits only
		if err != nil || secs > uint64(maxRetryAfter/time.Second) {
			return now.Add(maxRetryAfter), true
		}
		return now.Add(time.Duration(secs) * time.Second), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}, false
	}
	if t.Sub(now) > maxRetryAfter {
		return now.Add(maxRetryAfter), true
	}
	return t, true
}
