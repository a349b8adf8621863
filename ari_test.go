package tlspilot

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// ariPath is where Pebble 2.10 serves renewal information.
const ariPath = "/draft-ietf-acme-ari-03/renewalInfo/"

// restartable runs one Manager after another on the same storage, as
// successive starts of a process, with one pair of listeners on Pebble's
// validation ports that always answers for the Manager of the moment.
type restartable struct {
	t    *testing.T
	p    *testenv.Pebble
	cfg  Config
	cur  atomic.Pointer[Manager]
	stop func()
}

func newRestartable(t *testing.T, p *testenv.Pebble, cfg Config) *restartable {
	t.Helper()
	r := &restartable{t: t, p: p, cfg: cfg}
	hl := listen(t, p.HTTPPort)
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.cur.Load().HTTPHandler(nil).ServeHTTP(w, req)
	})}
	go func() { _ = hs.Serve(hl) }()
	tl := listen(t, p.TLSPort)
	tc := &tls.Config{
		NextProtos: []string{"acme-tls/1"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cur.Load().GetCertificate(h)
		},
	}
	ts := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.NotFoundHandler(), TLSConfig: tc}
	go func() { _ = ts.ServeTLS(tl, "", "") }()
	t.Cleanup(func() {
		r.halt()
		_ = hs.Close()
		_ = ts.Close()
	})
	return r
}

// start starts a new Manager managing names and runs it.
func (r *restartable) start(names ...string) *Manager {
	r.t.Helper()
	r.halt()
	m, err := New(context.Background(), r.cfg)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	r.cur.Store(m)
	if err := m.Manage(context.Background(), names...); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	r.stop = func() { cancel(); <-done }
	return m
}

// halt stops the running Manager, if any, as a process stop would.
func (r *restartable) halt() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// storedState reads the renewal state of the only certificate in m.
func storedState(t *testing.T, m *Manager) certstore.State {
	t.Helper()
	id := m.Status()[0].ID
	st, err := m.store.LoadState(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestARIWindowInPastAfterRestart: the CA moves a certificate's renewal
// window into the past (as it does when it is about to revoke it) while
// the process is down. After the next start the process asks the CA at
// once, sees the window has passed and renews, with "replaces". The
// renewal information fetched with the certificate is kept, not asked
// for again.
func TestARIWindowInPastAfterRestart(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	r := newRestartable(t, p, testConfig(t, p, ev))
	m := r.start("ari.example.test")
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	leaf := handshake(t, m, "ari.example.test", nil)[0]

	// The answer fetched while downloading the certificate is used and
	// stored: no second request, a renewal time inside Pebble's window.
	time.Sleep(200 * time.Millisecond)
	if n := p.RequestsTo(ariPath); n != 1 {
		t.Errorf("%d renewal information requests after issuance, want 1 (the one made with the download)", n)
	}
	st := storedState(t, m)
	ariID := m.Status()[0].ID
	c, err := m.store.LoadCert(context.Background(), ariID)
	if err != nil {
		t.Fatal(err)
	}
	if st.ARIFor != c.ARIID || st.ARIStart.IsZero() || st.RenewAt.Before(st.ARIStart) || !st.RenewAt.Before(st.ARIEnd) {
		t.Fatalf("state after issuance = %+v, want the CA's window for %s and a renewal time inside it", st, c.ARIID)
	}
	if d := time.Until(st.ARICheckAfter); d < 5*time.Hour || d > 7*time.Hour {
		t.Errorf("next renewal information check in %v, want Pebble's Retry-After (6h)", d)
	}

	r.halt()
	now := time.Now()
	p.SetARIWindow(t, leaf, now.Add(-2*time.Hour), now.Add(-time.Hour))
	before := p.RequestsTo(ariPath)
	m = r.start("ari.example.test")
	got := waitEvent(t, ev, EventRenewed, 1, 30*time.Second)
	if got.Time.Sub(now) > 20*time.Second {
		t.Errorf("renewed %v after the restart, want at once", got.Time.Sub(now))
	}
	if n := p.RequestsTo(ariPath) - before; n < 2 || n > 3 {
		// One check after the start, one with the new certificate's
		// download (acmez may retry a malformed answer).
		t.Errorf("%d renewal information requests after the restart, want 2", n)
	}
	second := handshake(t, m, "ari.example.test", nil)[0]
	if second.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("the renewed certificate is not served")
	}
	wantID := c.ARIID
	if !testenv.PebbleFindsSerial(leaf) {
		wantID = "" // Pebble cannot find it, refuses the order, and the Manager orders without replaces
	}
	if rep := p.Replaces(); len(rep) != 2 || rep[1] != wantID {
		t.Errorf("replaces = %q, want [\"\" %q]", rep, wantID)
	}
	if next := m.Status()[0].NextRenewal; time.Until(next) < time.Hour {
		t.Errorf("next renewal of the new certificate in %v: it would renew again", time.Until(next))
	}
}

// TestRenewalTimeKeptAcrossRestarts: with no renewal information from
// the CA (its renewalInfo endpoint fails), the lifetime rule's random
// renewal time is drawn once and stored: a restart keeps it.
func TestRenewalTimeKeptAcrossRestarts(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	p.SetFault(func(w http.ResponseWriter, req *http.Request) bool {
		if len(req.URL.Path) >= len(ariPath) && req.URL.Path[:len(ariPath)] == ariPath {
			http.Error(w, "renewal information unavailable", http.StatusNotFound)
			return true
		}
		return false
	})
	ev := &events{}
	r := newRestartable(t, p, testConfig(t, p, ev))
	m := r.start("keep.example.test")
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	first := waitRenewAt(t, m)
	leaf := handshake(t, m, "keep.example.test", nil)[0]
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	hi := leaf.NotAfter.Add(-life / 3)
	if first.Before(hi.Add(-life/15)) || !first.Before(hi) {
		t.Errorf("renewal time %v, want in the lifetime rule's window [%v, %v)", first, hi.Add(-life/15), hi)
	}
	for range 3 {
		m = r.start("keep.example.test")
		// Wait for the check made after the start, then compare.
		deadline := time.Now().Add(10 * time.Second)
		for storedState(t, m).ARICheckAfter.Before(time.Now()) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := waitRenewAt(t, m); !got.Equal(first) {
			t.Fatalf("renewal time after a restart = %v, want the stored %v", got, first)
		}
		if next := m.Status()[0].NextRenewal; next.After(first) {
			t.Errorf("next renewal %v is after the renewal time %v", next, first)
		}
	}
}

// waitRenewAt waits until the renewal time of m's only certificate is
// stored, and returns it.
func waitRenewAt(t *testing.T, m *Manager) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := storedState(t, m); !st.RenewAt.IsZero() {
			return st.RenewAt
		}
		if time.Now().After(deadline) {
			t.Fatal("no renewal time stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCAChangeReplacesCertificate: the config moves from one CA to
// another (Let's Encrypt staging to production, say). The stored
// certificate of the old CA is served at once after the restart and
// replaced right away by one from the new CA, ordered without "replaces"
// (which names a certificate of the CA it is sent to).
func TestCAChangeReplacesCertificate(t *testing.T) {
	pa := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, pa, ev)
	ra := newRestartable(t, pa, cfg)
	ra.start("move.example.test")
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	ra.halt()

	pb := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfgB := cfg
	cfgB.CA, cfgB.CARoots = pb.DirectoryURL, pb.Roots
	rb := newRestartable(t, pb, cfgB)
	m := rb.start("move.example.test")
	waitEvent(t, ev, EventRenewed, 1, 30*time.Second)
	chain := handshake(t, m, "move.example.test", nil)
	verify(t, chain, pb.IssuerRoots(t), "move.example.test")
	if rep := pb.Replaces(); len(rep) != 1 || rep[0] != "" {
		t.Errorf("replaces sent to the new CA = %q, want none", rep)
	}
	if st := m.Status()[0]; st.CA != pb.DirectoryURL || st.State != StateValid {
		t.Errorf("status after the move: %+v", st)
	}
}
