package admin

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
)

//go:embed page.html
var pageHTML string

// pageTemplate is parsed once per Handler; html/template escapes every
// value by its context.
func pageTemplate() (*template.Template, error) {
	return template.New("page").Parse(pageHTML)
}

// pageCSP forbids scripts, frames and every external load: the page is
// styled inline and needs nothing else, so even a value that escaped
// escaping could not run.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageData is what page.html shows.
type pageData struct {
	Refresh   int // seconds
	Generated string
	Status    string
	Class     string // of the overall status
	Error     string // why the status is UNKNOWN
	Account   *tlspilot.AccountStatus
	Counts    []stateCount
	Certs     []certRow
}

type stateCount struct {
	State, Class string
	N            int
}

// certRow is one certificate, formatted for people.
type certRow struct {
	ID, Names, State, Class     string
	TimeLeft, NotAfter          string
	NextRenewal, NextIn         string
	LastError, LastAttempt      string
	KeyType, Serial, Issuer, CA string
	Revoked                     string
	Attempts                    int
	Unmanaged                   bool
	Deploy                      *deployView // nil without a deployer
	// AnswersLeft are the challenge answers left published, one line
	// each: "dns-01 _acme-challenge.example.com VALUE".
	AnswersLeft []string
}

// deployView is the deployment of a certificate with a deployer
// (tlspilot certs), formatted for people.
type deployView struct {
	Label, Class       string
	Serial, DeployedAt string
	Error, LastAttempt string
	RetryAt            string
	Attempts           int
}

// page writes the HTML status page. It is streamed, not buffered: with
// thousands of certificates it runs to megabytes. The template fails only
// on a programming error, which is logged.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	rep := h.src.Report(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	bw := bufio.NewWriterSize(w, 64<<10)
	err := h.tmpl.Execute(bw, newPageData(rep, h.refresh))
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		h.log.Debug("admin: write the status page", "error", err)
	}
}

func newPageData(rep tlspilot.StatusReport, refresh time.Duration) pageData {
	d := pageData{
		Refresh:   max(1, int(refresh.Seconds())),
		Generated: stamp(rep.Time),
		Status:    rep.Status,
		Class:     statusClass(rep.ExitCode),
		Error:     rep.Error,
		Account:   rep.Account,
		Certs:     make([]certRow, 0, len(rep.Certificates)),
	}
	count := map[string]int{}
	failing := stateCount{State: "deploy failing", Class: "orange"}
	for _, c := range rep.Certificates {
		count[c.State]++
		row := newCertRow(c, rep.Time)
		if row.Deploy != nil && c.Deploy.State == tlspilot.DeployFailing {
			failing.N++
			failing.Class = worse(failing.Class, row.Deploy.Class)
		}
		d.Certs = append(d.Certs, row)
	}
	for _, st := range append(states, tlspilot.StateUnmanaged) {
		if count[st] > 0 {
			d.Counts = append(d.Counts, stateCount{State: st, Class: stateClass(st), N: count[st]})
		}
	}
	if failing.N > 0 {
		d.Counts = append(d.Counts, failing)
	}
	return d
}

func newCertRow(c tlspilot.CertStatus, now time.Time) certRow {
	next := nextRenewal(c)
	r := certRow{
		ID: c.ID, Names: strings.Join(c.Names, ", "), State: c.State, Class: stateClass(c.State),
		TimeLeft: timeLeft(c, now), NotAfter: stamp(c.NotAfter),
		NextRenewal: stamp(next), NextIn: until(now, next),
		LastError: c.LastError, LastAttempt: stamp(c.LastAttempt), Attempts: c.Attempts,
		KeyType: string(c.KeyType), Serial: c.Serial, Issuer: c.Issuer, CA: c.CA,
		Revoked: stamp(c.RevokedAt), Unmanaged: !c.Managed, Deploy: newDeployView(c.Deploy, now),
	}
	if r.LastError == "" && c.LastProblem != "" {
		r.LastError = c.LastProblem
	}
	for _, a := range c.AnswersLeft {
		r.AnswersLeft = append(r.AnswersLeft, a.Type+" "+a.Name+" "+a.Value)
	}
	return r
}

// nextRenewal is the renewal `tlspilot status` shows (its NEXT RENEWAL
// column, cmd/tlspilot/status.go): the time drawn in the certificate's
// renewal window, or, while attempts fail, without a certificate, once
// it is revoked or before a time is drawn, the next attempt (which is
// also when renewal information is next asked for).
func nextRenewal(c tlspilot.CertStatus) time.Time {
	if c.Attempts > 0 || !c.Serving || c.RenewAt.IsZero() || c.State == tlspilot.StateRevoked {
		return c.NextRenewal
	}
	return c.RenewAt
}

// newDeployView formats d, nil for a certificate without a deployer.
func newDeployView(d *tlspilot.DeployStatus, now time.Time) *deployView {
	if d == nil {
		return nil
	}
	v := &deployView{Label: "deploy " + d.State, Class: deployClass(d, now), Serial: d.Serial, DeployedAt: stamp(d.DeployedAt)}
	if d.State == tlspilot.DeployDone {
		v.Label = d.State
	}
	if d.State == tlspilot.DeployFailing {
		v.Error, v.Attempts, v.LastAttempt, v.RetryAt = d.LastError, d.Attempts, stamp(d.LastAttempt), stamp(d.RetryAt)
	}
	return v
}

// deployClass is the colour of a deployment, graded as the status
// report grades it: a failing one is red while the software has no
// valid certificate from tlspilot (CRITICAL), orange while a previous,
// still valid one is in place (WARNING).
func deployClass(d *tlspilot.DeployStatus, now time.Time) string {
	switch d.State {
	case tlspilot.DeployDone:
		return "green"
	case tlspilot.DeployFailing:
		if d.NotAfter.IsZero() || !now.Before(d.NotAfter) {
			return "red"
		}
		return "orange"
	}
	return "grey"
}

// worse is the more urgent of two colours.
func worse(a, b string) string {
	if a == "red" || b == "red" {
		return "red"
	}
	if a == "orange" || b == "orange" {
		return "orange"
	}
	return a
}

// stateClass is the colour of a state: red when the certificate is
// expired, about to be or revoked (CRITICAL in the status report),
// orange when renewal fails or none is in service yet, green when all
// is well.
func stateClass(state string) string {
	switch state {
	case tlspilot.StateExpired, tlspilot.StateExpiring, tlspilot.StateRevoked:
		return "red"
	case tlspilot.StateFailing, tlspilot.StatePending:
		return "orange"
	case tlspilot.StateValid, tlspilot.StateRenewing:
		return "green"
	}
	return "grey"
}

func statusClass(exit int) string {
	switch exit {
	case tlspilot.ExitOK:
		return "green"
	case tlspilot.ExitWarning:
		return "orange"
	}
	return "red"
}

// timeLeft says how long the certificate in service has left at now, or
// how long ago it expired: in hours and minutes under two days (DaysLeft,
// rounded to hundredths, reads "-0.00" minutes after the expiry), in
// days, as DaysLeft says, from two.
func timeLeft(c tlspilot.CertStatus, now time.Time) string {
	switch d := c.NotAfter.Sub(now); {
	case !c.Serving || c.NotAfter.IsZero():
		return "no certificate yet"
	case d <= -48*time.Hour:
		return "expired " + days(-c.DaysLeft) + " ago"
	case d <= 0, c.State == tlspilot.StateExpired: // graded a moment after now
		return "expired " + span(max(-d, 0)) + " ago"
	case d < 48*time.Hour:
		return span(d)
	}
	return days(c.DaysLeft)
}

// span writes a duration for people: seconds under a minute, minutes
// under an hour, hours and minutes under two days, then days.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return days(d.Hours() / 24)
}

// days writes a number of days: one decimal under 10, whole days from
// 10.
func days(d float64) string {
	if d < 10 {
		return fmt.Sprintf("%.1f days", d)
	}
	return fmt.Sprintf("%.0f days", math.Floor(d))
}

// until says in words how far t is from now.
func until(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	if d < time.Second {
		return "due now"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("in %ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("in %dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// stamp formats a time in UTC to the minute, empty for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
