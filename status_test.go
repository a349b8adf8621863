package tlspilot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestStatusStatesAndExitCodes: each certificate's state and the
// report's Nagios code follow from its fields, most urgent first.
func TestStatusStatesAndExitCodes(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	nb, na := now.Add(-30*24*time.Hour), now.Add(60*24*time.Hour) // 90 days, 60 left
	valid := CertStatus{ID: "v", Managed: true, Serving: true, NotBefore: nb, NotAfter: na}
	tests := []struct {
		name  string
		c     CertStatus
		state string
		code  int
	}{
		{"valid", valid, StateValid, ExitOK},
		{"renewing", with(valid, func(c *CertStatus) { c.Renewing = true }), StateRenewing, ExitOK},
		{"failing", with(valid, func(c *CertStatus) { c.Attempts = 2 }), StateFailing, ExitWarning},
		{"expiring", with(valid, func(c *CertStatus) { c.NotAfter = now.Add(3 * 24 * time.Hour) }), StateExpiring, ExitWarning},
		{"expired", with(valid, func(c *CertStatus) { c.NotAfter = now.Add(-time.Second) }), StateExpired, ExitCritical},
		{"pending fresh", CertStatus{Managed: true, PendingSince: now.Add(-59 * time.Minute)}, StatePending, ExitOK},
		{"pending failing", CertStatus{Managed: true, PendingSince: now.Add(-time.Minute), Attempts: 1}, StatePending, ExitWarning},
		{"pending over an hour", CertStatus{Managed: true, PendingSince: now.Add(-61 * time.Minute)}, StatePending, ExitCritical},
		{"pending, never looked at", CertStatus{Managed: true}, StatePending, ExitWarning},
		{"unmanaged expired", with(valid, func(c *CertStatus) { c.Managed = false; c.NotAfter = now.Add(-time.Hour) }), StateUnmanaged, ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			c.settle(now, WarnWindow{})
			if c.State != tt.state {
				t.Errorf("state %q, want %q", c.State, tt.state)
			}
			r := NewStatusReport(now, []CertStatus{valid, c}, nil)
			if r.ExitCode != tt.code || r.Status != exitNames[tt.code] {
				t.Errorf("report %s (%d), want %d", r.Status, r.ExitCode, tt.code)
			}
		})
	}
	var all []CertStatus
	for _, tt := range tests {
		c := tt.c
		c.ID = tt.name
		c.settle(now, WarnWindow{})
		all = append(all, c)
	}
	r := NewStatusReport(now, all, nil)
	for i := 1; i < len(r.Certificates); i++ {
		if stateRank[r.Certificates[i-1].State] > stateRank[r.Certificates[i].State] {
			t.Errorf("not sorted by urgency: %s before %s", r.Certificates[i-1].State, r.Certificates[i].State)
		}
	}
	if r.Certificates[0].State != StateExpired || r.ExitCode != ExitCritical {
		t.Errorf("first %s, code %d", r.Certificates[0].State, r.ExitCode)
	}
}

func with(c CertStatus, f func(*CertStatus)) CertStatus {
	f(&c)
	return c
}

// TestReadStatusOtherCA: status predicts what a Manager does with a
// stored certificate from another CA than the config's (staging to
// production, or an import): renewed at once, not at its usual time.
// Before, status showed the usual time while serve or certs replaced it.
func TestReadStatusOtherCA(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	c := Cert{Names: []string{"otherca.example.test"}}
	obtain(t, p, cfg, c)
	next := func(cfg Config) time.Time {
		r := ReadStatus(t.Context(), cfg, c)
		if len(r.Certificates) != 1 {
			t.Fatalf("status: %+v", r)
		}
		return r.Certificates[0].NextRenewal
	}
	if n := next(cfg); !n.After(time.Now().Add(time.Minute)) {
		t.Errorf("same CA: next renewal %v, want the usual time, well ahead", n)
	}
	other := cfg
	other.CA = "https://ca.other.example/directory"
	if n := next(other); n.After(time.Now()) {
		t.Errorf("another CA: next renewal %v, want now", n)
	}
}

// TestReadStatusUnreadable: a certificate whose stored certificate or
// renewal state cannot be read makes the report UNKNOWN, with the reason
// as its last error; before, an unreadable renewal state was dropped (a
// certificate failing its renewals showed OK) and an unreadable
// certificate showed pending (WARNING, even when the one in service had
// expired).
func TestReadStatusUnreadable(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	c := Cert{Names: []string{"unreadable.example.test"}}
	obtain(t, p, cfg, c)
	if r := ReadStatus(t.Context(), cfg, c); r.ExitCode != ExitOK {
		t.Fatalf("before: %s, %+v", r.Status, r.Certificates)
	}
	id := ReadStatus(t.Context(), cfg, c).Certificates[0].ID
	for _, rec := range []string{"state.json", "cert.json"} {
		path := filepath.Join(cfg.StorageDir, "data", "certs", id, rec)
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := ReadStatus(t.Context(), cfg, c)
		if r.ExitCode != ExitUnknown || r.Status != "UNKNOWN" || !strings.Contains(r.Certificates[0].LastError, "unreadable") {
			t.Errorf("%s unreadable: %s (exit %d), last error %q; want UNKNOWN and the reason", rec, r.Status, r.ExitCode, r.Certificates[0].LastError)
		}
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
