package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestNextRenewalAsStatus: the page's next renewal is the one `tlspilot
// status` shows: the time drawn in the renewal window (renew_at) while
// renewals succeed, the next attempt while they fail. /metrics keeps
// tlspilot_certificate_next_renewal_seconds (the next attempt or check)
// and adds tlspilot_certificate_renew_at_seconds.
func TestNextRenewalAsStatus(t *testing.T) {
	ok := fakeCert("ok", nil)
	failing := fakeCert("failing", func(c *tlspilot.CertStatus) {
		c.Attempts, c.LastError, c.LastAttempt = 2, "obtain: CA down", fixedNow.Add(-time.Hour)
		c.NextRenewal = fixedNow.Add(20 * time.Minute)
	})
	url, _ := serveFake(t, ok, failing)
	_, _, page := get(t, url+"/")
	for _, tt := range []struct {
		c        tlspilot.CertStatus
		want     time.Time
		wantIn   string
		notShown time.Time
	}{
		{ok, ok.RenewAt, "in 50d 1h", ok.NextRenewal},
		{failing, failing.NextRenewal, "in 20m", failing.RenewAt},
	} {
		row := certRow(t, page, tt.c.ID)
		if !strings.Contains(row, pageStamp(tt.want)) || !strings.Contains(row, tt.wantIn) || strings.Contains(row, pageStamp(tt.notShown)) {
			t.Errorf("%s: next renewal is not %s (%s):\n%s", tt.c.ID, pageStamp(tt.want), tt.wantIn, row)
		}
	}
	f := scrape(t, url)
	f.gauge("tlspilot_certificate_next_renewal_seconds", float64(ok.NextRenewal.Unix()), "cert", "ok")
	f.gauge("tlspilot_certificate_renew_at_seconds", float64(ok.RenewAt.Unix()), "cert", "ok")
	f.gauge("tlspilot_certificate_renew_at_seconds", float64(failing.RenewAt.Unix()), "cert", "failing")
	checkPromtool(t, &world{url: url})
}

// TestJustExpired: a certificate that expired minutes ago is shown as
// expired, with how long ago, never as "-0.0 days" left.
func TestJustExpired(t *testing.T) {
	for _, tt := range []struct {
		ago  time.Duration
		want string
	}{
		{5 * time.Minute, "expired 5m ago"},
		{12 * time.Minute, "expired 12m ago"},
		{30 * time.Second, "expired 30s ago"},
		{26 * time.Hour, "expired 26h 0m ago"},
		{3*24*time.Hour + 12*time.Hour, "expired 3.5 days ago"},
	} {
		c := fakeCert("old", func(c *tlspilot.CertStatus) { c.NotAfter = fixedNow.Add(-tt.ago) })
		url, _ := serveFake(t, c)
		_, _, page := get(t, url+"/")
		row := certRow(t, page, "old")
		if c.State != tlspilot.StateExpired || !strings.Contains(row, ">"+tt.want+"</span>") || strings.Contains(row, "-0.") {
			t.Errorf("expired %v ago (%s, %.2f days left): the row lacks %q:\n%s", tt.ago, c.State, c.DaysLeft, tt.want, row)
		}
	}
}

// pageStamp is how the page writes a time.
func pageStamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// TestAnswersLeftShown: the challenge answers an order could not take
// down (the status document's answers_left) are on the page, under the
// certificate, escaped; only /status and `tlspilot status` showed them.
func TestAnswersLeftShown(t *testing.T) {
	left := fakeCert("left", func(c *tlspilot.CertStatus) {
		c.AnswersLeft = []tlspilot.LeftAnswer{{Type: "dns-01", Name: "_acme-challenge.left.example", Value: "v4lu3<b>"}}
	})
	url, _ := serveFake(t, left)
	_, _, page := get(t, url+"/")
	row := certRow(t, page, left.ID)
	if !strings.Contains(row, "answer left behind: dns-01 _acme-challenge.left.example v4lu3&lt;b&gt;") {
		t.Errorf("the answer left is not on the page, escaped:\n%s", row)
	}
}
