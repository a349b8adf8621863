package admin

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlspilot/tlspilot/internal/stapler"
)

// staplingMetrics exposes the OCSP staples of serve's certificates
// (stapler.Stapler.Status) once WatchStapling has named the source, one
// series per certificate that names a responder (labels: its first name
// and serial number):
//
//	tlspilot_ocsp_staple_age_seconds{name,serial}                   since the stapled response's thisUpdate (none while nothing is stapled)
//	tlspilot_ocsp_staple_next_refresh_timestamp_seconds{name,serial} when the next fetch is planned
//	tlspilot_ocsp_staple_fetch_failures_total{name,serial}           fetches that failed (responder down, bad answer)
type staplingMetrics struct {
	status            atomic.Pointer[func() []stapler.CertStatus]
	age, next, failed *prometheus.Desc
}

func newStaplingMetrics() *staplingMetrics {
	labels := []string{"name", "serial"}
	return &staplingMetrics{
		age: prometheus.NewDesc("tlspilot_ocsp_staple_age_seconds",
			"Seconds since the thisUpdate of the OCSP response stapled to the certificate now.", labels, nil),
		next: prometheus.NewDesc("tlspilot_ocsp_staple_next_refresh_timestamp_seconds",
			"When the certificate's OCSP response is next fetched (Unix time).", labels, nil),
		failed: prometheus.NewDesc("tlspilot_ocsp_staple_fetch_failures_total",
			"Failed fetches of the certificate's OCSP response (responder down or a response refused).", labels, nil),
	}
}

// Describe sends the descriptions (prometheus.Collector).
func (s *staplingMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.age
	ch <- s.next
	ch <- s.failed
}

// Collect sends one series of each per certificate, nothing before
// WatchStapling (prometheus.Collector).
func (s *staplingMetrics) Collect(ch chan<- prometheus.Metric) {
	f := s.status.Load()
	if f == nil {
		return
	}
	now := time.Now()
	for _, c := range (*f)() {
		name := c.Serial
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		if c.Stapling {
			ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, now.Sub(c.ThisUpdate).Seconds(), name, c.Serial)
		}
		if !c.NextRefresh.IsZero() {
			ch <- prometheus.MustNewConstMetric(s.next, prometheus.GaugeValue, float64(c.NextRefresh.UnixNano())/1e9, name, c.Serial)
		}
		ch <- prometheus.MustNewConstMetric(s.failed, prometheus.CounterValue, float64(c.Failures), name, c.Serial)
	}
}

// WatchStapling adds the OCSP staples of serve's certificates to
// /metrics: status is called at every scrape (stapler.Stapler.Status).
func (m *Metrics) WatchStapling(status func() []stapler.CertStatus) {
	m.stapling.status.Store(&status)
}
