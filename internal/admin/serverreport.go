package admin

import (
	"time"

	"github.com/tlspilot/tlspilot"
)

// addServer adds to rep what the running HTTPS server knows beyond the
// Manager, once WatchClientAuth and WatchStapling have named it: the
// client-certificate refusals per site and reason, and the OCSP staples.
func (m *Metrics) addServer(rep *tlspilot.StatusReport, now time.Time) {
	if f := m.server.refusals.Load(); f != nil {
		for _, r := range (*f)() {
			rep.ClientAuth = append(rep.ClientAuth, tlspilot.ClientAuthRefusals{Site: r.Site, Reason: r.Reason, Count: r.Count})
		}
	}
	if f := m.stapling.status.Load(); f != nil {
		for _, c := range (*f)() {
			st := tlspilot.StapleStatus{Names: c.Names, Serial: c.Serial, Responder: c.Responder, Status: c.Status,
				Stapling: c.Stapling, NextRefresh: c.NextRefresh.UTC(), Failures: c.Failures}
			if c.Stapling {
				st.ThisUpdate, st.Expires = c.ThisUpdate.UTC(), c.Expires.UTC()
				st.AgeSeconds = now.Sub(c.ThisUpdate).Round(time.Second).Seconds()
			}
			rep.OCSPStaples = append(rep.OCSPStaples, st)
		}
	}
}
