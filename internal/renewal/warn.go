package renewal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WarnWindow is how long before it expires a certificate whose renewal
// keeps failing is reported as expiring:
// a fraction of its lifetime, or a fixed duration. The zero value means
// DefaultWarnFraction of the lifetime, as mod_md's MDWarnWindow.
type WarnWindow struct {
	// Fraction of the certificate's lifetime, in (0, 1); used when
	// Duration is zero.
	Fraction float64
	// Duration is a fixed window, such as 7 days.
	Duration time.Duration
}

// DefaultWarnFraction is the warning window when none is configured:
// 10% of the lifetime (9 days of a 90-day certificate).
const DefaultWarnFraction = 0.10

// ParseWarnWindow reads a warning window: a percentage of the lifetime
// ("10%"), a number of days ("7d") or a Go duration ("72h", "90m").
func ParseWarnWindow(s string) (WarnWindow, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(s, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || !(f > 0 && f < 100) {
			return WarnWindow{}, fmt.Errorf("warning window %q: want a percentage between 0%% and 100%% of the lifetime, such as \"10%%\"", s)
		}
		return WarnWindow{Fraction: f / 100}, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || !(n > 0 && n < 3650) {
			return WarnWindow{}, fmt.Errorf("warning window %q: want a positive number of days, such as \"7d\"", s)
		}
		return WarnWindow{Duration: time.Duration(n * float64(24*time.Hour))}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return WarnWindow{}, fmt.Errorf("warning window %q: want a percentage (\"10%%\"), days (\"7d\") or a duration (\"72h\")", s)
	}
	return WarnWindow{Duration: d}, nil
}

// String formats w as ParseWarnWindow reads it.
func (w WarnWindow) String() string {
	switch {
	case w.Duration > 0 && w.Duration%(24*time.Hour) == 0:
		return strconv.Itoa(int(w.Duration/(24*time.Hour))) + "d"
	case w.Duration > 0:
		return w.Duration.String()
	case w.Fraction > 0:
		return strconv.FormatFloat(w.Fraction*100, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(DefaultWarnFraction*100, 'f', -1, 64) + "%"
}

// Start returns when the window opens for a certificate valid from
// notBefore to notAfter.
func (w WarnWindow) Start(notBefore, notAfter time.Time) time.Time {
	if w.Duration > 0 {
		return notAfter.Add(-w.Duration)
	}
	f := w.Fraction
	if !(f > 0 && f < 1) {
		f = DefaultWarnFraction
	}
	return notAfter.Add(-time.Duration(f * float64(notAfter.Sub(notBefore))))
}
