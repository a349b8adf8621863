package tlspilot

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// reviewEntry returns m's only entry.
func reviewEntry(t *testing.T, m *Manager) *entry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		return e
	}
	t.Fatal("no entry")
	return nil
}

// TestReviewStoppingNoticeWithoutLock: a peer holds notice/<id> while it
// sends the "expiring" notice (and has stored that it did). This process
// waits for the lock, and is stopped meanwhile (Run's context ends). It
// must not send the notice itself: the peer sent it. It does, without the
// lock and without reading what the peer stored: the cancelled context
// makes Lock fail, which noticeLock treats like a timeout, and LoadState
// with the same context fails too.
func TestReviewStoppingNoticeWithoutLock(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: time.Hour})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.WarnWindow = WarnWindow{Duration: 2 * time.Hour} // the whole lifetime
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "notice-stop.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	e := reviewEntry(t, m)
	e.mu.Lock()
	e.state.Attempts = 1 // renewal failing: the "expiring" notice is due
	e.mu.Unlock()

	// The peer: holds the notice lock, has recorded its notice as sent.
	bg := context.Background()
	lease, err := m.store.Storage().Lock(bg, certstore.NoticeLock(e.id))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Unlock(bg) }()
	st := e.snapshot().state
	st.WarnedAt = time.Now()
	if err := m.store.StoreState(bg, e.id, st); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.noticeExpiry(ctx, e)
	}()
	time.Sleep(300 * time.Millisecond) // waiting for the peer's lock
	stop()                             // the Manager is stopped
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("noticeExpiry still waiting 10s after the stop")
	}
	if n := len(ev.of(EventExpiring)); n != 0 {
		t.Errorf("a Manager stopped while waiting for the notice lock sent %d expiring notice(s), without the lock, although the peer holding it had sent it", n)
	}
}

// TestReviewLateRenewalNotRushed: the CA's window for the first
// certificate was in the future when it was given; renewal inside it
// failed (here: new orders refused) until the window had passed. The
// renewal that then succeeds is a late one, not a replacement made at once
// because the CA said "now": the new certificate must not be marked
// ARIRushed, so that when the CA later puts its window in the past (an
// incident, RFC 9773 §4.2) it is renewed at once, not a tenth of its
// lifetime (at most a day) after it was obtained.
func TestReviewLateRenewalNotRushed(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: time.Hour})
	h := newHostile(p)
	var (
		mu       sync.Mutex
		firstID  string
		firstAt  time.Time
		orders   int
		refusing = true
	)
	window := func(start, end time.Time) map[string]any {
		return map[string]any{"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339)}
	}
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.Contains(req.URL.Path, "renewalInfo") && resp.StatusCode == http.StatusOK:
			id := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
			if firstID == "" {
				firstID, firstAt = id, time.Now()
			}
			if id == firstID {
				// In the future when given: [+3s, +5s].
				return editJSON(resp, func(m map[string]any) {
					m["suggestedWindow"] = window(firstAt.Add(3*time.Second), firstAt.Add(5*time.Second))
				})
			}
			// Every later certificate: an incident, renew now.
			return editJSON(resp, func(m map[string]any) {
				m["suggestedWindow"] = window(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
			})
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/order-plz"):
			orders++
			if orders > 1 && refusing && !firstAt.IsZero() && time.Now().Before(firstAt.Add(6*time.Second)) {
				_, _ = io.Copy(io.Discard, resp.Body)
				b, _ := json.Marshal(map[string]any{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "review: refused for now"})
				resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
				resp.Header.Set("Content-Type", "application/problem+json")
				resp.Header.Del("Location")
				return setBody(resp, b)
			}
			if orders > 1 && time.Now().After(firstAt.Add(6*time.Second)) {
				refusing = false
			}
		}
		return resp
	})
	const name = "late.hostile.test"
	m, ev := hostileManager(t, p, h, name)
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	waitEvent(t, ev, EventRenewed, 1, 40*time.Second)
	e := reviewEntry(t, m)
	sn := e.snapshot()
	t.Logf("renewed (late) at %v: ARIRushed=%v, window %v..%v, renew at %v",
		sn.meta.obtained, sn.state.ARIRushed, sn.state.ARIStart, sn.state.ARIEnd, sn.state.RenewAt)
	if sn.state.ARIRushed {
		t.Errorf("a renewal made late (the window had passed while orders failed) marked the new certificate ARIRushed")
	}
	// The CA says the new certificate's window has passed: renewed at once.
	deadline := time.Now().Add(15 * time.Second)
	for len(ev.of(EventRenewed)) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(ev.of(EventRenewed)); n < 2 {
		sn := e.snapshot()
		t.Errorf("the CA put the new certificate's window in the past; not renewed within 15s (renew at %v, %v after it was obtained)",
			sn.state.RenewAt, sn.state.RenewAt.Sub(sn.meta.obtained).Round(time.Second))
	}
}
