package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// fakeSource reports a fixed status document, for the tests that need a
// certificate in a state a real CA takes days to reach.
type fakeSource struct{ rep tlspilot.StatusReport }

func (f fakeSource) Status() []tlspilot.CertStatus                { return slices.Clone(f.rep.Certificates) }
func (f fakeSource) Report(context.Context) tlspilot.StatusReport { return f.rep }

// fixedNow is the time of every fake report.
var fixedNow = time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)

// fakeCert is a valid 90-day certificate named id, 10 days old, as a
// Manager reports it at fixedNow after edit changed it.
func fakeCert(id string, edit func(*tlspilot.CertStatus)) tlspilot.CertStatus {
	c := tlspilot.CertStatus{ID: id, Names: []string{id + ".example.test"}, Managed: true, Serving: true,
		KeyType: tlspilot.ECDSAP256, Serial: "0a1b2c", Issuer: "Fake CA",
		NotBefore: fixedNow.Add(-10 * 24 * time.Hour), NotAfter: fixedNow.Add(80 * 24 * time.Hour),
		NextRenewal: fixedNow.Add(6 * time.Hour), RenewAt: fixedNow.Add(50*24*time.Hour + 90*time.Minute)}
	if edit != nil {
		edit(&c)
	}
	c.Grade(fixedNow, tlspilot.WarnWindow{Fraction: tlspilot.DefaultWarnFraction})
	return c
}

// serveFake serves the admin Handler over certs, graded at fixedNow, on
// an httptest server and returns its URL and the report.
func serveFake(t *testing.T, certs ...tlspilot.CertStatus) (string, tlspilot.StatusReport) {
	t.Helper()
	rep := tlspilot.NewStatusReport(fixedNow, certs,
		&tlspilot.AccountStatus{CA: "https://ca.example.test/dir", State: tlspilot.AccountValid})
	h, err := admin.New(admin.Options{Source: fakeSource{rep}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, rep
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, url string) metricFinder {
	t.Helper()
	code, _, body := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return metricFinder{t, families}
}

// family returns the samples of name, nil when it is absent.
func (f metricFinder) family(name string) []*dto.Metric { return f.families[name].GetMetric() }

// certRow returns the page's table row of certificate id.
func certRow(t *testing.T, page, id string) string {
	t.Helper()
	_, row, ok := strings.Cut(page, `id="cert-`+id+`"`)
	if !ok {
		t.Fatalf("the page has no row for %s:\n%s", id, page)
	}
	row, _, _ = strings.Cut(row, "</tr>")
	return row
}

// getHost fetches url with Host set to host.
func getHost(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
