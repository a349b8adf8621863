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
	Attempts                    int
	Unmanaged                   bool
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
	for _, c := range rep.Certificates {
		count[c.State]++
		d.Certs = append(d.Certs, newCertRow(c, rep.Time))
	}
	for _, st := range append(states, tlspilot.StateUnmanaged) {
		if count[st] > 0 {
			d.Counts = append(d.Counts, stateCount{State: st, Class: stateClass(st), N: count[st]})
		}
	}
	return d
}

func newCertRow(c tlspilot.CertStatus, now time.Time) certRow {
	r := certRow{
		ID: c.ID, Names: strings.Join(c.Names, ", "), State: c.State, Class: stateClass(c.State),
		TimeLeft: timeLeft(c), NotAfter: stamp(c.NotAfter),
		NextRenewal: stamp(c.NextRenewal), NextIn: until(now, c.NextRenewal),
		LastError: c.LastError, LastAttempt: stamp(c.LastAttempt), Attempts: c.Attempts,
		KeyType: string(c.KeyType), Serial: c.Serial, Issuer: c.Issuer, CA: c.CA,
		Unmanaged: !c.Managed,
	}
	if r.LastError == "" && c.LastProblem != "" {
		r.LastError = c.LastProblem
	}
	return r
}

// stateClass is the colour of a state: red when the certificate is
// expired or about to be, orange when renewal fails or none is in
// service yet, green when all is well.
func stateClass(state string) string {
	switch state {
	case tlspilot.StateExpired, tlspilot.StateExpiring:
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

// timeLeft says how long the certificate in service has left, in days.
func timeLeft(c tlspilot.CertStatus) string {
	switch {
	case !c.Serving || c.NotAfter.IsZero():
		return "no certificate yet"
	case c.DaysLeft < 0:
		return fmt.Sprintf("expired %s ago", days(-c.DaysLeft))
	}
	return days(c.DaysLeft)
}

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
