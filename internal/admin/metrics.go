package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlspilot/tlspilot"
)

// Metrics counts what a Manager does, for /metrics:
//
//	tlspilot_renewals_total{result="success"|"failure"}
//	tlspilot_acme_requests_total{endpoint, code}
//	tlspilot_acme_request_duration_seconds{endpoint}   histogram
//	tlspilot_challenges_total{type, result="valid"|"invalid"}
//	tlspilot_dns_propagation_wait_seconds              histogram
//	tlspilot_expiry_warnings_total                     expiring and expired notices
//
// Every label takes values from a fixed set (endpoints, challenge types,
// HTTP codes), so the series stay few whatever the number of
// certificates. It implements tlspilot.Metrics; its methods are safe
// for concurrent use and never block. It is a prometheus.Collector.
type Metrics struct {
	renewals    *prometheus.CounterVec
	warnings    prometheus.Counter
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	challenges  *prometheus.CounterVec
	propagation prometheus.Histogram
	server      *serverMetrics
	stapling    *staplingMetrics
}

// NewMetrics returns Metrics with every counter at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		server:   newServerMetrics(),
		stapling: newStaplingMetrics(),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlspilot_renewals_total",
			Help: "Certificates obtained or renewed (result=success) and attempts that failed (result=failure).",
		}, []string{"result"}),
		warnings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlspilot_expiry_warnings_total",
			Help: "Notices that a certificate in service is inside its warning window while renewal fails, or has expired.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlspilot_acme_requests_total",
			Help: "HTTP requests to the ACME CA by endpoint and status code (code=\"none\": no answer came).",
		}, []string{"endpoint", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tlspilot_acme_request_duration_seconds",
			Help:    "Time taken by HTTP requests to the ACME CA, by endpoint.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlspilot_challenges_total",
			Help: "Challenges the CA validated, by type and result (valid or invalid).",
		}, []string{"type", "result"}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tlspilot_dns_propagation_wait_seconds",
			Help:    "Time until every authoritative server of the zone served a dns-01 record.",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
	}
	// Both results exist from the start, so rates and alerts on failures
	// work before the first one.
	m.renewals.WithLabelValues("success")
	m.renewals.WithLabelValues("failure")
	return m
}

// ACMERequest counts one request to the CA (tlspilot.Metrics).
func (m *Metrics) ACMERequest(endpoint string, code int, d time.Duration) {
	c := "none"
	if code != 0 {
		c = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(endpoint, c).Inc()
	m.durations.WithLabelValues(endpoint).Observe(d.Seconds())
}

// Challenge counts one challenge the CA validated (tlspilot.Metrics).
func (m *Metrics) Challenge(typ string, valid bool) {
	result := "invalid"
	if valid {
		result = "valid"
	}
	m.challenges.WithLabelValues(typ, result).Inc()
}

// DNSPropagation records one wait for a dns-01 record
// (tlspilot.Metrics).
func (m *Metrics) DNSPropagation(d time.Duration) {
	m.propagation.Observe(d.Seconds())
}

// Event counts renewals from a Manager's events: obtained and renewed
// are successes, renew-failed failures, expiring and expired warnings.
// Call it from tlspilot.Config.OnEvent; it returns at once.
func (m *Metrics) Event(ev tlspilot.Event) {
	switch ev.Type {
	case tlspilot.EventObtained, tlspilot.EventRenewed:
		m.renewals.WithLabelValues("success").Inc()
	case tlspilot.EventFailed:
		m.renewals.WithLabelValues("failure").Inc()
	case tlspilot.EventExpiring, tlspilot.EventExpired:
		m.warnings.Inc()
	}
}

// Describe sends the descriptions of every metric (prometheus.Collector).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect sends the current values (prometheus.Collector).
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.renewals, m.warnings, m.requests, m.durations, m.challenges, m.propagation, m.server, m.stapling}
}

var (
	_ tlspilot.Metrics     = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)
