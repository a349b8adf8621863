package admin_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// TestMetricsWithoutCertificates: a Manager with no certificate in
// service (a serve whose sites all have cert_file, or whose certificates
// are all pending) still gets a full text exposition: the families
// without samples are left out, not the whole answer (the text encoder
// refuses an empty family, and /metrics was an empty 200).
func TestMetricsWithoutCertificates(t *testing.T) {
	m, err := tlspilot.New(t.Context(), tlspilot.Config{CA: "https://127.0.0.1:1/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Options{Source: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, hdr, body := get(t, srv.URL+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	for _, name := range []string{"tlspilot_certificates", "go_goroutines", "process_resident_memory_bytes"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s:\n%s", name, body)
		}
	}
}
