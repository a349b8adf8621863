package admin

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlspilot/tlspilot/internal/server"
)

// TestClientAuthRefusalsMetric: the server's refusal counters appear as
// tlspilot_client_auth_refusals_total{site,reason}, read at each scrape.
func TestClientAuthRefusalsMetric(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	m.WatchClientAuth(func() []server.ClientAuthRefusal {
		n++
		return []server.ClientAuthRefusal{
			{Site: "a.example", Reason: "no_certificate", Count: n},
			{Site: "a.example", Reason: "revoked", Count: 0},
		}
	})
	for scrape := 1; scrape <= 2; scrape++ {
		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "tlspilot_client_auth_refusals_total" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range mt.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				got[labels["site"]+"/"+labels["reason"]] = mt.GetCounter().GetValue()
			}
		}
		want := map[string]float64{"a.example/no_certificate": float64(scrape), "a.example/revoked": 0}
		if len(got) != len(want) || got["a.example/no_certificate"] != want["a.example/no_certificate"] || got["a.example/revoked"] != 0 {
			t.Errorf("scrape %d: %v, want %v", scrape, got, want)
		}
	}
}
