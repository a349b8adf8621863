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
//	tlspilot_certificate_next_renewal_seconds{cert}      next attempt or renewal-information check (Unix time)
//	tlspilot_certificate_renew_at_seconds{cert}          renewal time drawn in the renewal window (Unix time)
//	tlspilot_certificate_renewal_failures{cert}          consecutive failed attempts
//	tlspilot_certificates{state}                         managed certificates by state
//	tlspilot_certificate_deploy_failures{cert}           consecutive failed deployments (certificates with a deployer)
//	tlspilot_certificate_deployments{state}              certificates with a deployer by deploy state
type certFamilies struct {
	src Source
}

// states are the values of the state label, every one reported (0 when
// no certificate is in it) so that alerts see a zero, not an absence:
// every State constant of a managed certificate (Status never reports
// StateUnmanaged), most urgent first.
var states = []string{tlspilot.StateExpired, tlspilot.StateRevoked, tlspilot.StatePending, tlspilot.StateExpiring,
	tlspilot.StateFailing, tlspilot.StateRenewing, tlspilot.StateValid}

// deployStates are the values of the deploy state label, reported as
// states are, once a certificate has a deployer.
var deployStates = []string{tlspilot.DeployFailing, tlspilot.DeployPending, tlspilot.DeployDone}

func newCertFamilies(src Source) *certFamilies { return &certFamilies{src: src} }

// gather returns the families for the certificates managed now; the
// deploy families only when a certificate has a deployer (tlspilot
// certs), so that serve shows none.
func (c *certFamilies) gather() []*dto.MetricFamily {
	st := c.src.Status()
	s := newCertSeries(len(st))
	for i := range st {
		s.add(&st[i])
	}
	return s.families()
}

// certSeries collects the samples of certFamilies.
type certSeries struct {
	notAfter, next, renewAt, failures, deployFailures *dto.MetricFamily
	count, deployCount                                map[string]int
	deployers                                         int
}

func newCertSeries(n int) *certSeries {
	return &certSeries{
		notAfter: family("tlspilot_certificate_not_after_seconds",
			"Expiry (Unix time) of the certificate in service; absent while none from the CA is.", n),
		next: family("tlspilot_certificate_next_renewal_seconds",
			"When (Unix time) the next renewal attempt or renewal-information check of the certificate is due.", n),
		renewAt: family("tlspilot_certificate_renew_at_seconds",
			"When (Unix time) the certificate in service is to be renewed: the time drawn in its renewal window; absent until one is drawn.", n),
		failures: family("tlspilot_certificate_renewal_failures",
			"Consecutive failed attempts to obtain or renew the certificate (0 after a success).", n),
		deployFailures: family("tlspilot_certificate_deploy_failures",
			"Consecutive failed attempts to deploy the certificate (write its files, reload), for a certificate with a deployer (0 after a success).", n),
		count:       make(map[string]int, len(states)),
		deployCount: make(map[string]int, len(deployStates)),
	}
}

// add adds the samples of one certificate.
func (s *certSeries) add(c *tlspilot.CertStatus) {
	s.count[c.State]++
	cert := label("cert", c.ID)
	if c.Serving && !c.NotAfter.IsZero() {
		s.notAfter.Metric = append(s.notAfter.Metric, gauge(unix(c.NotAfter.UnixMilli()), cert, label("names", strings.Join(c.Names, ","))))
	}
	if !c.NextRenewal.IsZero() {
		s.next.Metric = append(s.next.Metric, gauge(unix(c.NextRenewal.UnixMilli()), cert))
	}
	if !c.RenewAt.IsZero() {
		s.renewAt.Metric = append(s.renewAt.Metric, gauge(unix(c.RenewAt.UnixMilli()), cert))
	}
	s.failures.Metric = append(s.failures.Metric, gauge(float64(c.Attempts), cert))
	if d := c.Deploy; d != nil {
		s.deployers++
		s.deployCount[d.State]++
		s.deployFailures.Metric = append(s.deployFailures.Metric, gauge(float64(d.Attempts), cert))
	}
}

// families returns the families, the counts by state included.
func (s *certSeries) families() []*dto.MetricFamily {
	byState := family("tlspilot_certificates",
		"Managed certificates by state ("+strings.Join(states, ", ")+").", len(states))
	for _, state := range states {
		byState.Metric = append(byState.Metric, gauge(float64(s.count[state]), label("state", state)))
	}
	out := []*dto.MetricFamily{s.notAfter, s.next, s.renewAt, s.failures, byState}
	if s.deployers == 0 {
		return out
	}
	byDeploy := family("tlspilot_certificate_deployments",
		"Certificates with a deployer by the state of their deployment ("+strings.Join(deployStates, ", ")+").", len(deployStates))
	for _, state := range deployStates {
		byDeploy.Metric = append(byDeploy.Metric, gauge(float64(s.deployCount[state]), label("state", state)))
	}
	return append(out, s.deployFailures, byDeploy)
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
