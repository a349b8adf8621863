package admin_test

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestMetricsDNS01 obtains a wildcard certificate through dns-01 from
// Pebble, with the records published to BIND over RFC 2136, and checks
// the dns-01 challenges and the propagation wait in /metrics.
func TestMetricsDNS01(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	w := newWorld(t, testenv.PebbleOptions{DNSServer: b.Addr}, func(c *tlspilot.Config) {
		prov, err := provider.New(dns01.Config{Provider: "rfc2136", Server: b.Addr, TSIGKey: b.KeyName,
			TSIGAlgorithm: b.KeyAlgorithm, TSIGSecretFile: b.SecretFile(t)}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		c.Challenge, c.DNSProvider = tlspilot.DNS01, prov
		c.DNSPropagation = dns01.PropagationOptions{Resolvers: []string{b.Addr}, AuthoritativePort: b.Port,
			Interval: 50 * time.Millisecond, Timeout: 10 * time.Second}
	})
	if err := w.m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, w.m, time.Minute, "obtained", func(st []tlspilot.CertStatus) bool {
		return len(st) == 1 && st[0].Serving && !st[0].Renewing
	})
	_, _, body := get(t, w.url+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f := metricFinder{t, families}
	f.counter("tlspilot_challenges_total", 2, "type", "dns-01", "result", "valid")
	f.atLeast("tlspilot_dns_propagation_wait_seconds", dto.MetricType_HISTOGRAM, 1)
	f.gauge("tlspilot_certificate_not_after_seconds", float64(st[0].NotAfter.Unix()), "cert", st[0].ID, "names", "example.test,*.example.test")
	f.counter("tlspilot_renewals_total", 1, "result", "success")
}
