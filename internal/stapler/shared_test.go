package stapler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// attr returns the value of the attribute key of the first record whose
// message is msg, as text, and whether there is such a record.
func (l *logRecords) attr(msg, key string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		val := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				val = fmt.Sprint(a.Value.Any())
				return false
			}
			return true
		})
		return val, true
	}
	return "", false
}

// count returns how many records have the level and message line.
func (l *logRecords) count(line string) int {
	n := 0
	for _, m := range l.messages() {
		if m == line {
			n++
		}
	}
	return n
}

// TestSharedCertificateOneBackoff: two sites load one certificate file
// (a SAN or wildcard certificate) into two values. With the responder
// answering tryLater, handshakes alternating between the sites and a
// reload of the same files make one request, one warning and one
// failure: backoff belongs to the certificate, not to the value. A
// renewed certificate (a new leaf) still gets its own fetch at once.
func TestSharedCertificateOneBackoff(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test", "b.test"}})
	resp := startFakeResponder(t, ca, "tryLater")
	recs := &logRecords{}
	s := newStaplerOpts(t, recs, Options{})
	a, b := loadPair(t, leaf), loadPair(t, leaf) // one per site, as serve loads them
	s.Prepare(a)
	s.Prepare(b)
	waitFor(t, "a failed fetch", func() bool { st := s.Status(); return len(st) == 1 && st[0].Failures > 0 })
	for i := range 20 {
		s.Staple(a)
		s.Staple(b)
		if i == 10 {
			s.Prepare(loadPair(t, leaf)) // a reload of the same files
		}
		time.Sleep(20 * time.Millisecond) // a fetch started by a switch would be made meanwhile
	}
	if n := resp.requests.Load(); n != 1 {
		t.Fatalf("%d requests to the responder, want 1 (the next after the backoff)", n)
	}
	if st := s.Status(); len(st) != 1 || st[0].Failures != 1 || !st[0].NextRefresh.After(time.Now().Add(30*time.Second)) {
		t.Errorf("Status = %+v, want one entry, one failure, next fetch after the backoff", st)
	}
	if n := len(recs.messages()); n != 1 {
		t.Errorf("logged %q, want one warning", recs.messages())
	}

	renewed := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test", "b.test"}})
	s.Prepare(loadPair(t, renewed))
	waitFor(t, "the renewed certificate's own fetch", func() bool { return resp.requests.Load() == 2 })
	waitFor(t, "two status entries", func() bool { st := s.Status(); return len(st) == 2 && st[0].Failures == 1 && st[1].Failures == 1 })
}

// blockingStorage is a storage whose Load waits until its ctx ends.
type blockingStorage struct {
	storage.Storage
	entered chan struct{}
	once    sync.Once
}

func (b *blockingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	return nil, fmt.Errorf("blocking load %s: %w", key, ctx.Err())
}

// TestCancelledCacheReadQuiet: a read of the stored response cut short
// because the Stapler stops (serve shutting down or reloading) is no
// "cached response unreadable" warning.
func TestCancelledCacheReadQuiet(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test", DNSNames: []string{"www.test"}})
	store, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bs := &blockingStorage{Storage: store, entered: make(chan struct{})}
	recs := &logRecords{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := New(ctx, Options{Cache: ocspclient.NewCache(ocspclient.CacheOptions{Storage: bs}), Logger: slog.New(recs)})
	if err != nil {
		t.Fatal(err)
	}
	s.Prepare(loadPair(t, leaf))
	<-bs.entered
	cancel()
	waitFor(t, "the goroutine to stop", func() bool { return len(s.Status()) == 0 })
	if m := recs.messages(); len(m) != 0 {
		t.Errorf("logged %q, want nothing", m)
	}
}

// TestFailureSaysWhatWasWrong: a responder that answered, but unusably,
// is not called unavailable: the warning says what was wrong, and names
// the certificate.
func TestFailureSaysWhatWasWrong(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test", DNSNames: []string{"www.test", "alt.test"}})
	resp := startFakeResponder(t, ca, "good")
	tests := []struct{ mode, problem string }{
		{"tryLater", "responder answered tryLater"},
		{"garbage", "the responder's answer is not an OCSP response"},
		{"wrongkey", "answer signed by a key other than the issuer's or its delegate"},
		{"otherserial", "answer for another serial"},
		{"stale", "answer is stale"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			resp.mode.Store(tt.mode)
			recs := &logRecords{}
			s := newStaplerOpts(t, recs, Options{})
			s.Prepare(loadPair(t, leaf))
			waitFor(t, "a failed fetch", func() bool { st := s.Status(); return len(st) == 1 && st[0].Failures > 0 })
			msg := "ocsp stapling: " + tt.problem + ", serving without a new staple"
			if m := recs.messages(); len(m) != 1 || m[0] != "WARN "+msg {
				t.Fatalf("logged %q, want %q", m, msg)
			}
			if names, _ := recs.attr(msg, "names"); names != "[www.test alt.test]" {
				t.Errorf("names = %q, want the leaf's names", names)
			}
		})
	}
	t.Run("garbage error", func(t *testing.T) {
		resp.mode.Store("garbage")
		recs := &logRecords{}
		s := newStaplerOpts(t, recs, Options{})
		s.Prepare(loadPair(t, leaf))
		waitFor(t, "a failed fetch", func() bool { st := s.Status(); return len(st) == 1 && st[0].Failures > 0 })
		msg := recs.messages()[0][len("WARN "):]
		if e, _ := recs.attr(msg, "error"); !strings.Contains(e, "the responder's answer is not an OCSP response: asn1: ") {
			t.Errorf("error = %q, want what was wrong, then the parser's cause", e)
		}
	})
}

// TestRecoveryLogged: after failed fetches, the first staple obtained
// is logged once at INFO, so the last line about the certificate is not
// the warning.
func TestRecoveryLogged(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test", DNSNames: []string{"www.test"}})
	recs := &logRecords{}
	s := newStaplerOpts(t, recs, Options{RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	waitFor(t, "two failed fetches", func() bool { st := s.Status(); return len(st) == 1 && st[0].Failures >= 2 })
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	waitFor(t, "a staple", func() bool { return s.Staple(tc).OCSPStaple != nil })
	const msg = "ocsp stapling: staple obtained after failed fetches"
	m := recs.messages()
	if n := recs.count("INFO " + msg); n != 1 || m[len(m)-1] != "INFO "+msg {
		t.Fatalf("logged %q, want one INFO %q last", m, msg)
	}
	if f, _ := recs.attr(msg, "failures"); f == "" || f == "0" || f == "1" {
		t.Errorf("failures = %q, want how many fetches failed (2 or more)", f)
	}
	if names, _ := recs.attr(msg, "names"); names != "[www.test]" {
		t.Errorf("names = %q", names)
	}
	if slices.Contains(m, "WARN ocsp stapling: cached response unreadable") {
		t.Error("warned about the cache")
	}
}
