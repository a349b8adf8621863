package tlspilot

import "github.com/tlspilot/tlspilot/internal/renewal"

// WarnWindow is how long before it expires a certificate whose renewal
// keeps failing is reported as expiring (state "expiring",
// EventExpiring): a fraction of its lifetime or a fixed duration. The
// zero value means DefaultWarnFraction (10%) of the lifetime, as
// mod_md's MDWarnWindow.
type WarnWindow = renewal.WarnWindow

// DefaultWarnFraction is the warning window when none is configured:
// 10% of the lifetime.
const DefaultWarnFraction = renewal.DefaultWarnFraction

// ParseWarnWindow reads a warning window: a percentage of the lifetime
// ("10%"), a number of days ("7d") or a Go duration ("72h").
func ParseWarnWindow(s string) (WarnWindow, error) { return renewal.ParseWarnWindow(s) }
