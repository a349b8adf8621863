package admin

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlspilot/tlspilot/internal/server"
)

// serverMetrics exposes the HTTPS server's connection counters
// (server.Stats) once WatchServer has named the server:
//
//	tlspilot_connections_open                 gauge
//	tlspilot_connections_max                  gauge (max_connections)
//	tlspilot_connections_refused_total        closed at accept: at the cap, none idle
//	tlspilot_connections_reclaimed_total      idle keep-alive connections closed to make room
//	tlspilot_accept_errors_total              accept(2) failures (EMFILE…)
//	tlspilot_client_errors_total              requests the client broke off, stalled or spoiled
//	tlspilot_client_auth_refusals_total{site,reason}   client certificates refused (WatchClientAuth)
type serverMetrics struct {
	stats    atomic.Pointer[func() server.Stats]
	descs    [6]*prometheus.Desc
	refusals atomic.Pointer[func() []server.ClientAuthRefusal]
	refDesc  *prometheus.Desc
}

func newServerMetrics() *serverMetrics {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &serverMetrics{refDesc: prometheus.NewDesc("tlspilot_client_auth_refusals_total",
		"Clients refused in the TLS handshake by a site with client_auth, by reason (no_certificate, untrusted, expired, depth, revoked, unknown, ...).",
		[]string{"site", "reason"}, nil), descs: [6]*prometheus.Desc{
		d("tlspilot_connections_open", "Client connections open now."),
		d("tlspilot_connections_max", "The cap on client connections (max_connections)."),
		d("tlspilot_connections_refused_total", "Connections closed at accept: at the cap with none idle to reclaim."),
		d("tlspilot_connections_reclaimed_total", "Idle keep-alive connections closed to make room for new ones."),
		d("tlspilot_accept_errors_total", "Failures to accept a connection, such as running out of file descriptors."),
		d("tlspilot_client_errors_total", "Proxied requests the client broke off, stalled or sent malformed (400, 408, 499)."),
	}}
}

// Describe sends the descriptions (prometheus.Collector).
func (s *serverMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
	ch <- s.refDesc
}

// Collect sends the server's counters, nothing before WatchServer
// (prometheus.Collector).
func (s *serverMetrics) Collect(ch chan<- prometheus.Metric) {
	if r := s.refusals.Load(); r != nil {
		for _, c := range (*r)() {
			ch <- prometheus.MustNewConstMetric(s.refDesc, prometheus.CounterValue, float64(c.Count), c.Site, c.Reason)
		}
	}
	f := s.stats.Load()
	if f == nil {
		return
	}
	st := (*f)()
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(s.descs[0], gauge, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(s.descs[1], gauge, float64(st.MaxConnections))
	ch <- prometheus.MustNewConstMetric(s.descs[2], counter, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(s.descs[3], counter, float64(st.Reclaimed))
	ch <- prometheus.MustNewConstMetric(s.descs[4], counter, float64(st.AcceptErrors))
	ch <- prometheus.MustNewConstMetric(s.descs[5], counter, float64(st.ClientErrors))
}

// WatchServer adds the HTTPS server's connection counters to /metrics:
// stats is called at every scrape (server.Server.Stats).
func (m *Metrics) WatchServer(stats func() server.Stats) {
	m.server.stats.Store(&stats)
}

// WatchClientAuth adds the client-certificate refusals of the HTTPS
// server's sites to /metrics as tlspilot_client_auth_refusals_total:
// refusals is called at every scrape (server.Server.ClientAuthRefusals).
func (m *Metrics) WatchClientAuth(refusals func() []server.ClientAuthRefusal) {
	m.server.refusals.Store(&refusals)
}
