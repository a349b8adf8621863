package tlspilot

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestExpiryNotices: a 30-second certificate whose CA goes away after
// issuance. Renewal keeps failing; inside the warning window the Manager
// sends one "expiring" event (not one per failure), and once the
// certificate has expired one "expired" event; the status says so.
func TestExpiryNotices(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: 30 * time.Second})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.RetryMin, cfg.RetryMax = 500*time.Millisecond, time.Second
	cfg.WarnWindow = WarnWindow{Duration: 8 * time.Second}
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "expiry.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	p.Close()
	// (Pebble's renewal window for so short a certificate may open at once,
	// so a renewal may have slipped in before the CA went away: the
	// expiring event names the certificate in service.)
	exp := waitEvent(t, ev, EventExpiring, 1, 40*time.Second)
	if d := exp.NotAfter.Sub(exp.Time); d > 8*time.Second+time.Second || d < 0 {
		t.Errorf("expiring sent %v before expiry, want inside the 8s window", d)
	}
	if exp.Err == nil || exp.Attempt == 0 {
		t.Errorf("expiring event without the failure: %+v", exp)
	}
	if st := m.Status()[0]; st.State != StateExpiring {
		t.Errorf("state %s, want expiring", st.State)
	}
	waitEvent(t, ev, EventExpired, 1, 20*time.Second)
	time.Sleep(3 * time.Second) // more failed attempts
	if n := len(ev.of(EventExpiring)); n != 1 {
		t.Errorf("%d expiring events, want 1 (at most one a day)", n)
	}
	if n := len(ev.of(EventExpired)); n != 1 {
		t.Errorf("%d expired events, want 1", n)
	}
	if n := len(ev.of(EventFailed)); n < 3 {
		t.Errorf("only %d failed attempts", n)
	}
	if st := m.Status()[0]; st.State != StateExpired || st.DaysLeft > 0 {
		t.Errorf("status after expiry: %+v", st)
	}
}
