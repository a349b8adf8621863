package admin

import (
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/tlspilot/tlspilot"
)

// certFamilies reports each managed certificate from Source.Status at
// scrape time, so the series follow the configuration (one per managed
// certificate, none for certificates no longer managed) and cost nothing
// between scrapes:
//
//	tlspilot_certificate_not_after_seconds{cert, names}  expiry of the certificate in service (Unix time)
//	tlspilot_certificate_next_renewal_seconds{cert}      next attempt or check (Unix time)
//	tlspilot_certificate_renewal_failures{cert}          consecutive failed attempts
//	tlspilot_certificates{state}                         managed certificates by state
type certFamilies struct {
	src Source
}

// states are the values of the state label, every one reported (0 when
// no certificate is in it) so that alerts see a zero, not an absence.
var states = []string{tlspilot.StateExpired, tlspilot.StatePending, tlspilot.StateExpiring,
	tlspilot.StateFailing, tlspilot.StateRenewing, tlspilot.StateValid}

func newCertFamilies(src Source) *certFamilies { return &certFamilies{src: src} }

// gather returns the four families for the certificates managed now.
func (c *certFamilies) gather() []*dto.MetricFamily {
	st := c.src.Status()
	notAfter := family("tlspilot_certificate_not_after_seconds",
		"Expiry (Unix time) of the certificate in service; absent while none from the CA is.", len(st))
	next := family("tlspilot_certificate_next_renewal_seconds",
		"When (Unix time) the next renewal attempt or check of the certificate is due.", len(st))
	failures := family("tlspilot_certificate_renewal_failures",
		"Consecutive failed attempts to obtain or renew the certificate (0 after a success).", len(st))
	byState := family("tlspilot_certificates",
		"Managed certificates by state (expired, pending, expiring, failing, renewing, valid).", len(states))
	count := make(map[string]int, len(states))
	for _, s := range st {
		count[s.State]++
		cert := label("cert", s.ID)
		if s.Serving && !s.NotAfter.IsZero() {
			notAfter.Metric = append(notAfter.Metric, gauge(unix(s.NotAfter.UnixMilli()), cert, label("names", strings.Join(s.Names, ","))))
		}
		if !s.NextRenewal.IsZero() {
			next.Metric = append(next.Metric, gauge(unix(s.NextRenewal.UnixMilli()), cert))
		}
		failures.Metric = append(failures.Metric, gauge(float64(s.Attempts), cert))
	}
	for _, state := range states {
		byState.Metric = append(byState.Metric, gauge(float64(count[state]), label("state", state)))
	}
	return []*dto.MetricFamily{notAfter, next, failures, byState}
}

func family(name, help string, n int) *dto.MetricFamily {
	t := dto.MetricType_GAUGE
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &t, Metric: make([]*dto.Metric, 0, n)}
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: &name, Value: &value}
}

// gauge is one sample; labels are given sorted by name.
func gauge(v float64, labels ...*dto.LabelPair) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}}
}

// unix converts Unix milliseconds to seconds.
func unix(ms int64) float64 { return float64(ms) / 1000 }
