package stapler

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// logRecords is a slog.Handler keeping every record, for tests that
// check what was (or was not) logged.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

func (l *logRecords) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// newStapler returns a Stapler over a Cache on the storage directory dir
// (none if ""), logging into recs.
func newStapler(t *testing.T, dir string, recs *logRecords, onRevoked func(context.Context, *x509.Certificate, time.Time)) *Stapler {
	t.Helper()
	copts := ocspclient.CacheOptions{}
	if dir != "" {
		store, err := fsstore.New(fsstore.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		copts.Storage = store
	}
	s, err := New(t.Context(), Options{Cache: ocspclient.NewCache(copts), Logger: slog.New(recs), OnRevoked: onRevoked})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newIntermediate makes a root and an intermediate CA under it: the
// chain a server sends then holds the leaf's issuer, as the stapler
// needs (a leaf issued by a root alone is sent without it).
func newIntermediate(t *testing.T) *testenv.OpenSSLCA {
	t.Helper()
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	return testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
}

// loadPair loads a certificate chain and key as serve does.
func loadPair(t *testing.T, c *testenv.IssuedCert) *tls.Certificate {
	t.Helper()
	tc, err := tls.LoadX509KeyPair(c.ChainFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tc
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStapleFromResponderThenStorage staples the answer of a real openssl
// ocsp responder, then, in a new Stapler over the same storage with the
// responder stopped (a restart), the stored answer.
func TestStapleFromResponderThenStorage(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test", DNSNames: []string{"www.test"}})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	dir := t.TempDir()
	recs := &logRecords{}
	s := newStapler(t, dir, recs, nil)
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	waitFor(t, "a staple and its next refresh", func() bool {
		st := s.Status()
		return s.Staple(tc).OCSPStaple != nil && len(st) == 1 && st[0].NextRefresh.After(st[0].ThisUpdate)
	})
	got := s.Staple(tc)
	if tc.OCSPStaple != nil {
		t.Error("Staple modified the certificate it was given")
	}
	r, err := ocspclient.Parse(got.OCSPStaple, leaf.Cert, ca.Cert, time.Now())
	if err != nil || r.Status != ocspclient.Good {
		t.Fatalf("staple: %v, status %v", err, r)
	}
	st := s.Status()
	if len(st) != 1 || !st[0].Stapling || st[0].Status != "good" || st[0].Responder != ca.OCSPURL || !st[0].NextRefresh.After(time.Now()) {
		t.Errorf("Status = %+v", st)
	}
	ca.StopOCSP()

	s2 := newStapler(t, dir, recs, nil)
	tc2 := loadPair(t, leaf)
	s2.Prepare(tc2)
	waitFor(t, "the stored staple", func() bool { return s2.Staple(tc2).OCSPStaple != nil })
	if !bytes.Equal(s2.Staple(tc2).OCSPStaple, got.OCSPStaple) {
		t.Error("after the restart the staple is not the stored one")
	}
	if m := recs.messages(); len(m) != 0 {
		t.Errorf("logged %q, want nothing", m)
	}
}

// TestNoResponderNoStaple: a certificate naming no OCSP responder (as
// Pebble's and Let's Encrypt's) gets no staple, no goroutine, no log.
func TestNoResponderNoStaple(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test", NoOCSP: true})
	recs := &logRecords{}
	s := newStapler(t, "", recs, nil)
	tc := loadPair(t, leaf)
	for range 3 {
		if got := s.Staple(tc); got != tc {
			t.Fatal("Staple returned another certificate value")
		}
	}
	if st := s.Status(); len(st) != 0 {
		t.Errorf("Status = %+v, want none", st)
	}
	if m := recs.messages(); len(m) != 0 {
		t.Errorf("logged %q, want nothing", m)
	}
}

// TestResponderDown: no responder answers; the certificate is served
// without a staple, failures are counted and warned about.
func TestResponderDown(t *testing.T) {
	t.Parallel()
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	recs := &logRecords{}
	s := newStapler(t, t.TempDir(), recs, nil)
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	waitFor(t, "a failed fetch", func() bool { st := s.Status(); return len(st) == 1 && st[0].Failures > 0 })
	if got := s.Staple(tc); got.OCSPStaple != nil {
		t.Error("stapled without a response")
	}
	if m := recs.messages(); len(m) == 0 || m[0] != "WARN ocsp stapling: responder unavailable, serving without a new staple" {
		t.Errorf("logged %q, want the warning", m)
	}
}

// TestRevokedCallsOnRevoked: the responder says revoked; nothing is
// stapled and OnRevoked hears of it once.
func TestRevokedCallsOnRevoked(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	ca.Revoke(leaf.CertFile, "keyCompromise")
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	revoked := make(chan *x509.Certificate, 2)
	s := newStapler(t, "", &logRecords{}, func(_ context.Context, c *x509.Certificate, at time.Time) {
		if at.IsZero() {
			t.Error("OnRevoked without a revocation time")
		}
		revoked <- c
	})
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	if c := <-revoked; !c.Equal(leaf.Cert) {
		t.Error("OnRevoked told of another certificate")
	}
	if got := s.Staple(tc); got.OCSPStaple != nil {
		t.Error("stapled a revoked response")
	}
	waitFor(t, "the next fetch planned", func() bool { st := s.Status(); return len(st) == 1 && st[0].NextRefresh.After(time.Now()) })
	if st := s.Status(); len(st) != 1 || st[0].Status != "revoked" || st[0].Stapling {
		t.Errorf("Status = %+v", st)
	}
}

func TestNextFetch(t *testing.T) {
	s := &Stapler{opts: Options{RetryMin: time.Minute, RetryMax: time.Hour}}
	now := time.Now()
	good := &ocspclient.Response{ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(3 * time.Hour)}
	short := &ocspclient.Response{ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(2 * time.Minute)}
	tests := []struct {
		name     string
		resp     *ocspclient.Response
		failures int64
		want     time.Duration // from now, to the minute
	}{
		{"none yet", nil, 0, 0},
		{"half-life", good, 0, time.Hour},
		{"first failure", good, 1, time.Minute},
		{"fourth failure", good, 4, 8 * time.Minute},
		{"many failures", nil, 20, time.Hour},
		{"backoff past staleness", short, 3, 2 * time.Minute},
	}
	revoked := &ocspclient.Response{Status: ocspclient.Revoked, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(3 * time.Hour)}
	it := &item{}
	it.last.Store(revoked) // nothing stapled
	if got := s.nextFetch(it, true).Sub(now).Round(time.Minute); got != time.Hour {
		t.Errorf("after a revoked answer: next fetch in %v, want 1h (its half-life, not at once)", got)
	}
	// Precomputed: thisUpdate 5 days ago, nextUpdate in 2 (half-life
	// passed when it arrives).
	old := &ocspclient.Response{ThisUpdate: now.Add(-120 * time.Hour), NextUpdate: now.Add(48 * time.Hour)}
	it = &item{}
	it.last.Store(old)
	if got := s.nextFetch(it, false).Sub(now); got > 0 {
		t.Errorf("stored past its half-life, at start: next fetch in %v, want at once", got)
	}
	if got := s.nextFetch(it, true).Sub(now).Round(time.Minute); got != 24*time.Hour {
		t.Errorf("fetched past its half-life: next fetch in %v, want 24h (half of what is left)", got)
	}
	nearEnd := &ocspclient.Response{ThisUpdate: now.Add(-72 * time.Hour), NextUpdate: now.Add(30 * time.Second)}
	it.last.Store(nearEnd)
	if got := s.nextFetch(it, true).Sub(now).Round(time.Second); got != 15*time.Second {
		t.Errorf("fetched 30 s before its nextUpdate: next fetch in %v, want 15s", got)
	}
	nearEnd.NextUpdate = now.Add(4 * time.Second)
	if got := s.nextFetch(it, true).Sub(now).Round(time.Second); got != minRefetch {
		t.Errorf("fetched 4 s before its nextUpdate: next fetch in %v, want %v", got, minRefetch)
	}
	for _, tt := range tests {
		it := &item{}
		if tt.resp != nil {
			it.staple.Store(tt.resp)
			it.last.Store(tt.resp)
		}
		it.failures.Store(tt.failures)
		got := s.nextFetch(it, true).Sub(now).Round(time.Minute)
		if got != tt.want {
			t.Errorf("%s: next fetch in %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestChainWithoutIssuer: a chain of the leaf alone cannot have its
// answers verified: no staple, one warning.
func TestChainWithoutIssuer(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"}) // ChainFile: the leaf alone
	recs := &logRecords{}
	s := newStapler(t, "", recs, nil)
	tc := loadPair(t, leaf)
	s.Staple(tc)
	if got := s.Staple(tc); got != tc {
		t.Error("Staple returned another certificate value")
	}
	const msg = "ocsp stapling: the certificate chain lacks the issuer, no staple"
	if m := recs.messages(); len(m) != 1 || m[0] != "WARN "+msg {
		t.Errorf("logged %q, want one warning", m)
	}
	if names, _ := recs.attr(msg, "names"); names != "[www.test]" {
		t.Errorf("names = %q, want the leaf's (its common name, lacking DNS names)", names)
	}
}

// TestRefreshAtHalfLife: with answers valid one minute (openssl ocsp
// -nmin 1), a newer answer replaces the staple half-way, in the
// background.
func TestRefreshAtHalfLife(t *testing.T) {
	t.Parallel()
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	ca.StartOCSP(testenv.OCSPResponderOptions{NextUpdate: time.Minute})
	s := newStapler(t, t.TempDir(), &logRecords{}, nil)
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	waitFor(t, "a staple and its next refresh", func() bool {
		st := s.Status()
		return s.Staple(tc).OCSPStaple != nil && len(st) == 1 && st[0].NextRefresh.After(st[0].ThisUpdate)
	})
	first := s.Status()[0]
	if want := first.ThisUpdate.Add(30 * time.Second); !first.NextRefresh.Equal(want) {
		t.Errorf("next refresh %v, want %v (half of a minute after thisUpdate)", first.NextRefresh, want)
	}
	waitFor(t, "a newer staple", func() bool { return s.Status()[0].ThisUpdate.After(first.ThisUpdate) })
	r, err := ocspclient.Parse(s.Staple(tc).OCSPStaple, leaf.Cert, ca.Cert, time.Now())
	if err != nil || !r.ThisUpdate.After(first.ThisUpdate) {
		t.Errorf("staple after the refresh: %v, %v", r, err)
	}
}

// TestStapleNeverStale: a staple whose response went stale (the
// responder down past its nextUpdate) is no longer served.
func TestStapleNeverStale(t *testing.T) {
	s := &Stapler{}
	tc := &tls.Certificate{Certificate: [][]byte{{1}}}
	now := time.Now()
	for _, tt := range []struct {
		name   string
		expiry time.Time
		want   bool
	}{{"fresh", now.Add(time.Minute), true}, {"stale", now.Add(-time.Second), false}} {
		it := &item{leaf: &x509.Certificate{}}
		it.staple.Store(&ocspclient.Response{Raw: []byte("staple"), ThisUpdate: now.Add(-time.Hour), NextUpdate: tt.expiry})
		s.values.Store(tc, &holder{src: tc, it: it})
		if got := s.Staple(tc).OCSPStaple != nil; got != tt.want {
			t.Errorf("%s: stapled %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestUnknownAskedAgain: a certificate the responder does not know yet
// (issued after it read its index) gets no staple; once the responder
// knows it, the stapler asks again within unknownRecheck, not at the
// unknown answer's half-life (hours), and staples.
func TestUnknownAskedAgain(t *testing.T) {
	defer func(d time.Duration) { unknownRecheck = d }(unknownRecheck)
	unknownRecheck = 300 * time.Millisecond
	ca := newIntermediate(t)
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "late.test"}) // after the responder read index.txt
	s := newStapler(t, t.TempDir(), &logRecords{}, nil)
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	waitFor(t, "an unknown answer", func() bool {
		st := s.Status()
		return len(st) == 1 && st[0].Status == "unknown"
	})
	if s.Staple(tc).OCSPStaple != nil {
		t.Fatal("an unknown answer was stapled")
	}
	ca.StopOCSP()
	ca.StartOCSP(testenv.OCSPResponderOptions{}) // knows late.test now
	waitFor(t, "a staple once the responder knows the certificate", func() bool { return s.Staple(tc).OCSPStaple != nil })
}

// TestReloadShares: a reload loads the same certificate into a new
// value; it has the staple at once (the responder is down by then), and
// there is one goroutine and one status entry per certificate however
// many reloads (there were one more per reload, each fetching, for a
// week).
func TestReloadShares(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	s := newStapler(t, t.TempDir(), &logRecords{}, nil)
	first := loadPair(t, leaf)
	s.Prepare(first)
	waitFor(t, "a staple", func() bool { return s.Staple(first).OCSPStaple != nil })
	ca.StopOCSP()
	var last *tls.Certificate
	for range 5 {
		last = loadPair(t, leaf) // as a reload does
		s.Prepare(last)
	}
	if got := s.Staple(last); got.OCSPStaple == nil || &got.Certificate[0][0] != &last.Certificate[0][0] {
		t.Error("the reloaded certificate has no staple, or a copy of another value")
	}
	if st := s.Status(); len(st) != 1 || !st[0].Stapling {
		t.Errorf("status after 5 reloads: %+v, want one stapled entry", st)
	}
}
