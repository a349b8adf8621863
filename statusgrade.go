package tlspilot

import "time"

// Grade fills in what follows from c's other fields at now, as the
// Manager's own status does: DaysLeft, WarnFrom (from warn) and State.
// It is for certificates kept by something other than a Manager (the
// fleet agent's), so that `tlspilot status` grades them alike: the
// caller sets Managed, Serving, NotBefore, NotAfter, Attempts, Renewing,
// RevokedAt and PendingSince, and NewStatusReport does the rest.
func (c *CertStatus) Grade(now time.Time, warn WarnWindow) { c.settle(now, warn) }
