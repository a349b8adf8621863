package admin_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// hostile is an error detail the CA sends back; it must reach the page
// as text. Run, it would mark the document.
const hostile = `<script>document.documentElement.setAttribute('data-pwned','yes')</script><img src=x onerror="document.documentElement.setAttribute('data-pwned','img')">`

// TestAdmin obtains one certificate from Pebble, then has Pebble refuse
// the order of a second one with a problem whose detail is hostile HTML,
// and checks every endpoint against what the Manager reports.
func TestAdmin(t *testing.T) {
	w := newWorld(t, testenv.PebbleOptions{}, nil)
	if err := w.m.Manage(t.Context(), "good.example.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.m, 2*time.Minute, "obtained", func(st []tlspilot.CertStatus) bool {
		return len(st) == 1 && st[0].Serving && !st[0].Renewing
	})
	w.p.SetFault(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/order-plz" {
			return false
		}
		testenv.WriteProblem(rw, http.StatusForbidden, "rejectedIdentifier", hostile, 0)
		return true
	})
	if err := w.m.Manage(t.Context(), "bad.example.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.m, time.Minute, "failing twice", func(st []tlspilot.CertStatus) bool {
		bad, ok := byNames(st, "bad.example.test")
		return ok && bad.Attempts >= 2
	})
	// The second failure is in Status before its event reaches the
	// metrics (the state is stored first).
	for deadline := time.Now().Add(30 * time.Second); w.failed.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed events after two failed attempts", w.failed.Load())
		}
	}

	t.Run("healthz", func(t *testing.T) {
		if code, _, body := get(t, w.url+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("GET /healthz: %d %q", code, body)
		}
	})
	t.Run("status", func(t *testing.T) { checkStatus(t, w) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, w) })
	t.Run("metrics encodings", func(t *testing.T) { checkEncodings(t, w) })
	t.Run("promtool", func(t *testing.T) { checkPromtool(t, w) })
	t.Run("page", func(t *testing.T) { checkPage(t, w) })
	t.Run("pprof", func(t *testing.T) {
		code, _, body := get(t, w.url+"/debug/pprof/goroutine?debug=1")
		if code != 200 || !strings.Contains(body, "goroutine profile:") {
			t.Errorf("GET /debug/pprof/goroutine: %d %.200q", code, body)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		if code, _, _ := get(t, w.url+"/nope"); code != http.StatusNotFound {
			t.Errorf("GET /nope: %d, want 404", code)
		}
	})
}

// checkStatus: /status is the status document, the same as Report.
func checkStatus(t *testing.T, w *world) {
	code, h, body := get(t, w.url+"/status")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status: %d %s", code, h.Get("Content-Type"))
	}
	var rep tlspilot.StatusReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("GET /status: %v\n%s", err, body)
	}
	if rep.Schema != tlspilot.StatusSchema || rep.Status != "WARNING" || rep.ExitCode != tlspilot.ExitWarning ||
		rep.Account == nil || rep.Account.CA != w.p.DirectoryURL || rep.Account.State != tlspilot.AccountValid {
		t.Errorf("status document: %+v", rep)
	}
	if len(rep.Certificates) != 2 || rep.Certificates[0].Names[0] != "bad.example.test" ||
		rep.Certificates[0].State != tlspilot.StatePending || !strings.Contains(rep.Certificates[0].LastError, hostile) ||
		rep.Certificates[1].State != tlspilot.StateValid {
		t.Errorf("certificates, most urgent first: %+v", rep.Certificates)
	}
}

// checkMetrics parses /metrics with the Prometheus text parser and checks
// each contract name against what the Manager did.
func checkMetrics(t *testing.T, w *world) {
	code, h, body := get(t, w.url+"/metrics")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", code, h.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	st := w.m.Status()
	good, _ := byNames(st, "good.example.test")
	bad, _ := byNames(st, "bad.example.test")
	f := metricFinder{t, families}
	f.gauge("tlspilot_certificate_not_after_seconds", float64(good.NotAfter.Unix()), "cert", good.ID, "names", "good.example.test")
	f.absent("tlspilot_certificate_not_after_seconds", "cert", bad.ID)
	f.gauge("tlspilot_certificate_next_renewal_seconds", float64(good.NextRenewal.UnixMilli())/1000, "cert", good.ID)
	f.gauge("tlspilot_certificate_renewal_failures", 0, "cert", good.ID)
	if v := f.value("tlspilot_certificate_renewal_failures", dto.MetricType_GAUGE, "cert", bad.ID); v < 2 {
		t.Errorf("renewal failures of %s = %v, want at least 2", bad.ID, v)
	}
	f.gauge("tlspilot_certificates", 1, "state", "valid")
	f.gauge("tlspilot_certificates", 1, "state", "pending")
	f.gauge("tlspilot_certificates", 0, "state", "expired")
	f.counter("tlspilot_renewals_total", 1, "result", "success")
	f.atLeast("tlspilot_renewals_total", dto.MetricType_COUNTER, 2, "result", "failure")
	f.atLeast("tlspilot_acme_requests_total", dto.MetricType_COUNTER, 1, "endpoint", "directory", "code", "200")
	f.counter("tlspilot_acme_requests_total", 1, "endpoint", "new-order", "code", "201")
	f.atLeast("tlspilot_acme_requests_total", dto.MetricType_COUNTER, 2, "endpoint", "new-order", "code", "403")
	f.atLeast("tlspilot_acme_requests_total", dto.MetricType_COUNTER, 1, "endpoint", "finalize", "code", "200")
	f.atLeast("tlspilot_acme_request_duration_seconds", dto.MetricType_HISTOGRAM, 3, "endpoint", "new-order")
	f.counter("tlspilot_challenges_total", 1, "type", "http-01", "result", "valid")
	f.atLeast("tlspilot_dns_propagation_wait_seconds", dto.MetricType_HISTOGRAM, 0)
	f.atLeast("go_goroutines", dto.MetricType_GAUGE, 1)
	f.atLeast("process_resident_memory_bytes", dto.MetricType_GAUGE, 1)
}

// checkEncodings: /metrics is gzip-compressed only for a client that
// accepts it, and the same text either way.
func checkEncodings(t *testing.T, w *world) {
	fetch := func(acceptEncoding string) (http.Header, string) {
		req, err := http.NewRequest("GET", w.url+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", acceptEncoding)
		tr := &http.Transport{DisableCompression: true} // no transparent gunzip
		defer tr.CloseIdleConnections()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header, string(b)
	}
	for _, tt := range []struct {
		accept string
		gzip   bool
	}{{"", false}, {"identity", false}, {"gzip", true}, {"br, gzip;q=0.5", true}, {"gzip;q=0", false}} {
		h, body := fetch(tt.accept)
		if got := h.Get("Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", tt.accept, h.Get("Content-Encoding"))
		}
		if !strings.Contains(body, "\ntlspilot_renewals_total{result=\"success\"} 1\n") {
			t.Errorf("Accept-Encoding %q: body lacks the renewals:\n%.500s", tt.accept, body)
		}
	}
}

// checkPromtool validates the exposition with Prometheus's own linter.
func checkPromtool(t *testing.T, w *world) {
	_, _, body := get(t, w.url+"/metrics")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// checkPage opens the page in headless Chromium: names, states and time
// left are shown, the hostile detail is shown as text and never run.
func checkPage(t *testing.T, w *world) {
	st := w.m.Status()
	good, _ := byNames(st, "good.example.test")
	dom := chromium(t, w.url+"/", "--dump-dom")
	for _, want := range []string{
		"good.example.test", "bad.example.test", good.ID,
		`>valid</span>`, `>pending</span>`, ">WARNING</span>",
		">" + daysText(good.DaysLeft) + "</span>",
		"no certificate yet", w.p.DirectoryURL,
		"&lt;script&gt;document.documentElement.setAttribute('data-pwned','yes')&lt;/script&gt;&lt;img src=x onerror=",
		`<meta http-equiv="refresh" content="30">`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<img", `data-pwned="`} {
		if strings.Contains(dom, bad) {
			t.Errorf("the page holds %q: the hostile detail was not escaped", bad)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	shot := filepath.Join(t.ArtifactDir(), "status-page.png")
	chromium(t, w.url+"/", "--screenshot="+shot, "--window-size=1280,720", "--hide-scrollbars")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// daysText is how the page writes days left: one decimal under 10 days,
// whole days from 10.
func daysText(d float64) string {
	if d < 10 {
		return fmt.Sprintf("%.1f days", d)
	}
	return fmt.Sprintf("%.0f days", math.Floor(d))
}

// chromium runs headless Chromium on url with args and returns its
// standard output.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(t.Context(), "chromium", append(append(base, args...), url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// metricFinder looks up samples in parsed metric families.
type metricFinder struct {
	t        *testing.T
	families map[string]*dto.MetricFamily
}

// find returns the sample of name whose labels include every pair of
// labels, checking its type.
func (f metricFinder) find(name string, typ dto.MetricType, labels ...string) *dto.Metric {
	f.t.Helper()
	fam, ok := f.families[name]
	if !ok {
		f.t.Errorf("no metric %s", name)
		return nil
	}
	if fam.GetType() != typ {
		f.t.Errorf("%s is a %v, want a %v", name, fam.GetType(), typ)
	}
	for _, m := range fam.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	f.t.Errorf("no sample %s%v", name, labels)
	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}

// value returns a gauge or counter value, or a histogram's count.
func (f metricFinder) value(name string, typ dto.MetricType, labels ...string) float64 {
	f.t.Helper()
	m := f.find(name, typ, labels...)
	switch {
	case m == nil:
		return math.NaN()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return math.NaN()
}

func (f metricFinder) gauge(name string, want float64, labels ...string) {
	f.t.Helper()
	if got := f.value(name, dto.MetricType_GAUGE, labels...); got != want {
		f.t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func (f metricFinder) counter(name string, want float64, labels ...string) {
	f.t.Helper()
	if got := f.value(name, dto.MetricType_COUNTER, labels...); got != want {
		f.t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func (f metricFinder) atLeast(name string, typ dto.MetricType, min float64, labels ...string) {
	f.t.Helper()
	if got := f.value(name, typ, labels...); !(got >= min) {
		f.t.Errorf("%s%v = %v, want at least %v", name, labels, got, min)
	}
}

func (f metricFinder) absent(name string, labels ...string) {
	f.t.Helper()
	for _, m := range f.families[name].GetMetric() {
		if hasLabels(m, labels) {
			f.t.Errorf("%s%v is present, want it absent", name, labels)
		}
	}
}
