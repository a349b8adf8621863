package admin

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/tlspilot/tlspilot/internal/stapler"
)

// TestStaplingMetrics: one series of each per certificate with a
// responder, the age only while a staple is served; promtool accepts
// the exposition.
func TestStaplingMetrics(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.WatchStapling(func() []stapler.CertStatus {
		return []stapler.CertStatus{
			{Serial: "1a", Names: []string{"a.example"}, Status: "good", Stapling: true,
				ThisUpdate: now.Add(-time.Hour), Expires: now.Add(time.Hour), NextRefresh: now, Failures: 0},
			{Serial: "2b", Names: []string{"b.example"}, NextRefresh: now.Add(time.Minute), Failures: 3},
		}
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
		for _, mt := range mf.GetMetric() {
			var name string
			for _, l := range mt.GetLabel() {
				if l.GetName() == "name" {
					name = l.GetValue()
				}
			}
			if got[mf.GetName()] == nil {
				got[mf.GetName()] = map[string]float64{}
			}
			got[mf.GetName()][name] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	age := got["tlspilot_ocsp_staple_age_seconds"]
	if len(age) != 1 || age["a.example"] < 3599 {
		t.Errorf("staple age: %v, want a.example only, about 3600", age)
	}
	next := got["tlspilot_ocsp_staple_next_refresh_timestamp_seconds"]
	if len(next) != 2 || int64(next["b.example"]) != now.Add(time.Minute).Unix() {
		t.Errorf("next refresh: %v", next)
	}
	if f := got["tlspilot_ocsp_staple_fetch_failures_total"]; len(f) != 2 || f["b.example"] != 3 || f["a.example"] != 0 {
		t.Errorf("failures: %v", f)
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
