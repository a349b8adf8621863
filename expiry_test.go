package tlspilot

import (
	"context"
	"crypto/tls"
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

// TestExpiredNoticeBeforeRetry: a certificate whose renewal failed and
// waits for a retry due after its expiry (backoff grows to hours, a CA's
// Retry-After can be longer) is looked at when it expires, so its
// expired notice is not held until the retry; once the notice is sent,
// the retry time rules again. Before, the retry time came first.
func TestExpiredNoticeBeforeRetry(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	e := &entry{id: "x", site: &site{names: []string{"x.example.test"}}}
	e.cur.Store(&tls.Certificate{})
	e.meta = certMeta{notBefore: now.Add(-6 * 24 * time.Hour), notAfter: now.Add(10 * time.Minute)}
	e.state.RetryAt = now.Add(6 * time.Hour)
	if due := e.dueLocked(now, jitter); !due.Equal(e.meta.notAfter) {
		t.Errorf("retry pending after expiry: due %v, want the expiry %v", due, e.meta.notAfter)
	}
	e.state.ExpiredFor = e.meta.notAfter
	if due := e.dueLocked(now, jitter); !due.Equal(e.state.RetryAt) {
		t.Errorf("expired notice sent: due %v, want the retry %v", due, e.state.RetryAt)
	}
}

// TestExpiryNoticesOncePerCluster: two Managers sharing a storage, the
// CA gone after issuance. Between them they send one "expiring" and one
// "expired" notice, not one each: each takes up, under the notice lock,
// the notices the other recorded. Before, each node of a cluster sent its
// own.
func TestExpiryNoticesOncePerCluster(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: 30 * time.Second})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.RetryMin, cfg.RetryMax = 500*time.Millisecond, time.Second
	cfg.WarnWindow = WarnWindow{Duration: 8 * time.Second}
	cfg.StoragePoll = 200 * time.Millisecond
	const name = "cluster-expiry.example.test"
	a := startManager(t, p, cfg)
	b := startManager2(t, p, cfg)
	for _, m := range []*Manager{a, b} {
		if err := m.Manage(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !(len(a.Status()) == 1 && a.Status()[0].NotAfter.After(time.Now()) && len(b.Status()) == 1 && b.Status()[0].NotAfter.After(time.Now())) {
		if time.Now().After(deadline) {
			t.Fatalf("the certificate is not in service in both Managers: %+v, %+v", a.Status(), b.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Close()
	waitEvent(t, ev, EventExpiring, 1, 40*time.Second)
	waitEvent(t, ev, EventExpired, 1, 20*time.Second)
	time.Sleep(3 * time.Second) // more failed attempts, on both
	if n := len(ev.of(EventExpiring)); n != 1 {
		t.Errorf("%d expiring events from the two Managers, want 1", n)
	}
	if n := len(ev.of(EventExpired)); n != 1 {
		t.Errorf("%d expired events from the two Managers, want 1", n)
	}
	for _, m := range []*Manager{a, b} {
		if st := m.Status()[0]; st.State != StateExpired {
			t.Errorf("a Manager's state after expiry: %s, want expired", st.State)
		}
	}
}

// TestExpiryNoticeAfterPeerRenewed: a process about to send the
// "expiring" notice for its certificate while another process sharing
// the storage has just stored a renewed one puts the new one in service
// instead: no notice, and the new certificate's stored state (its
// renewal information) is not overwritten with the old one's.
func TestExpiryNoticeAfterPeerRenewed(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.WarnWindow = WarnWindow{Duration: 100 * 365 * 24 * time.Hour} // every certificate is inside it
	const name = "peer-renewed.example.test"
	a := newManaging(t, cfg, name)
	serveChallenges(t, p, a)
	if err := a.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	id := a.Status()[0].ID
	b := newManaging(t, cfg, name)
	if err := b.Renew(t.Context(), RenewOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	renewed := storedState(t, b)
	e := entryOf(t, a, id)
	e.mu.Lock()
	e.state.Attempts = 1 // a's renewal keeps failing, as far as it knows
	e.mu.Unlock()
	a.noticeExpiry(t.Context(), e)
	if n := len(ev.of(EventExpiring)); n != 0 {
		t.Errorf("%d expiring notices for a certificate a peer had replaced, want 0", n)
	}
	if st := storedState(t, a); st.ARIFor != renewed.ARIFor || st.ARIFor == "" {
		t.Errorf("stored state is for %q after the notice, want the renewed certificate's %q", st.ARIFor, renewed.ARIFor)
	}
}
