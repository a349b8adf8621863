package tlspilot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// checkBackoff checks that failed attempts were spaced by the backoff
// policy: each attempt starts no sooner than the retry time the one before
// announced, and each announced delay is at least half the exponential
// step (the jitter's lower bound) and at least minDelay.
func checkBackoff(t *testing.T, fails []Event, retryMin time.Duration, minDelay time.Duration) {
	t.Helper()
	for i, f := range fails {
		step := retryMin << (f.Attempt - 1)
		want := max(step/2, minDelay) - 50*time.Millisecond
		if d := f.RetryAt.Sub(f.Time); d < want {
			t.Errorf("attempt %d: retry in %v, want at least %v", f.Attempt, d, want)
		}
		if f.Attempt != i+1 {
			t.Errorf("event %d has attempt %d", i, f.Attempt)
		}
		if i > 0 && f.Time.Before(fails[i-1].RetryAt) {
			t.Errorf("attempt %d at %v, before the announced retry time %v", f.Attempt, f.Time, fails[i-1].RetryAt)
		}
	}
}

// TestCAUnreachable: with no CA listening, attempts fail, are reported,
// and back off; the temporary certificate keeps the name served.
func TestCAUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ev := &events{}
	cfg := Config{
		CA: "https://" + addr + "/dir", AgreeTerms: true, StorageDir: t.TempDir(), Logger: testLogger(t),
		RetryMin: 200 * time.Millisecond, RetryMax: 2 * time.Second, OnEvent: ev.add,
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.Run(ctx) }()
	if err := m.Manage(ctx, "down.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventFailed, 3, 30*time.Second)
	fails := ev.of(EventFailed)
	checkBackoff(t, fails, cfg.RetryMin, 0)
	if !strings.Contains(fails[0].Err.Error(), "connect") && !strings.Contains(fails[0].Err.Error(), "refused") {
		t.Errorf("error does not say the CA is unreachable: %v", fails[0].Err)
	}
	st := m.Status()[0]
	if st.Serving || st.Attempts < 3 || st.LastError == "" {
		t.Errorf("status = %+v", st)
	}
	// The name is still served, by the temporary certificate.
	chain := handshake(t, m, "down.example.test", nil)
	if !strings.Contains(chain[0].Subject.CommonName, "temporary") {
		t.Errorf("served %q, want the temporary certificate", chain[0].Subject.CommonName)
	}
}

// obtainThenFault obtains a short-lived certificate, then makes the CA
// answer every new order with fault, so the renewal fails.
func obtainThenFault(t *testing.T, name string, fault func(w http.ResponseWriter)) (*testenv.Pebble, *Manager, *events, []byte) {
	t.Helper()
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: 12 * time.Second})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.RetryMin, cfg.RetryMax = 300*time.Millisecond, 3*time.Second
	var mu sync.Mutex
	armed := false
	// Armed from the Manager's own event, before its next pass can start:
	// for a certificate this short, Pebble's renewal window may open at
	// once, and a renewal placed before the test armed the fault would
	// succeed.
	cfg.OnEvent = func(e Event) {
		if e.Type == EventObtained {
			mu.Lock()
			armed = true
			mu.Unlock()
		}
		ev.add(e)
	}
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if armed && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/order-plz") {
			fault(w)
			return true
		}
		return false
	})
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	first := handshake(t, m, name, nil)[0].Raw
	return p, m, ev, first
}

// TestCAServerError: a CA answering 500 makes renewal fail; the failure
// is reported, retried with backoff, and the old certificate stays in
// service.
func TestCAServerError(t *testing.T) {
	p, m, ev, first := obtainThenFault(t, "err500.example.test", func(w http.ResponseWriter) {
		testenv.WriteProblem(w, http.StatusInternalServerError, "serverInternal", "injected failure", 0)
	})
	before := p.RequestsTo("/order-plz")
	waitEvent(t, ev, EventFailed, 3, 40*time.Second)
	fails := ev.of(EventFailed)[:3]
	checkBackoff(t, fails, 300*time.Millisecond, 0)
	for _, f := range fails {
		if f.Problem == nil || !strings.HasSuffix(f.Problem.Type, ":serverInternal") || f.Problem.Class != "transient" {
			t.Errorf("event problem = %+v, want serverInternal (transient)", f.Problem)
		}
	}
	// The protocol client retries a 5xx a bounded number of times (3) per
	// request, never in a loop; a renewal's order naming the certificate
	// it replaces is placed once more without it after serverInternal
	// (issuance.replacesRefused), so at most 6 per attempt.
	got := p.RequestsTo("/order-plz") - before
	attempts := len(ev.of(EventFailed))
	if got < attempts || got > 6*(attempts+1) {
		t.Errorf("%d new-order requests for %d failed attempts", got, attempts)
	}
	if now := handshake(t, m, "err500.example.test", nil)[0].Raw; string(now) != string(first) {
		t.Error("the certificate in service changed although renewal failed")
	}
	st := m.Status()[0]
	if !st.Serving || st.Attempts < 3 || !strings.Contains(st.LastError, "injected failure") || !strings.HasSuffix(st.LastProblem, "serverInternal") {
		t.Errorf("status = %+v", st)
	}
}

// TestCARateLimited: a rateLimited problem with Retry-After holds every
// further attempt back until the CA's time, although the backoff alone
// would retry sooner.
func TestCARateLimited(t *testing.T) {
	const retryAfter = 3 * time.Second
	p, m, ev, first := obtainThenFault(t, "limited.example.test", func(w http.ResponseWriter) {
		testenv.WriteProblem(w, http.StatusTooManyRequests, "rateLimited", "too many new orders", retryAfter)
	})
	before := p.RequestsTo("/order-plz")
	waitEvent(t, ev, EventFailed, 2, 40*time.Second)
	fails := ev.of(EventFailed)[:2]
	checkBackoff(t, fails, 300*time.Millisecond, retryAfter-time.Second)
	if f := fails[0]; f.Problem == nil || f.Problem.Class != "rate-limited" || f.Problem.RetryAfter.IsZero() {
		t.Errorf("problem = %+v, want rate-limited with a Retry-After", f.Problem)
	}
	// One request per attempt: a rate limit is never retried at once.
	if got, n := p.RequestsTo("/order-plz")-before, len(ev.of(EventFailed)); got > n+1 {
		t.Errorf("%d new-order requests for %d failed attempts", got, n)
	}
	if now := handshake(t, m, "limited.example.test", nil)[0].Raw; string(now) != string(first) {
		t.Error("the certificate in service changed although renewal failed")
	}
	if st := m.Status()[0]; !strings.HasSuffix(st.LastProblem, "rateLimited") || !st.Serving {
		t.Errorf("status = %+v", st)
	}
}

// slowStateStorage takes delay over every Store of a renewal state, as a
// busy disk or a distant database does.
type slowStateStorage struct {
	storage.Storage
	delay time.Duration
}

func (s *slowStateStorage) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasSuffix(key, "/state.json") {
		time.Sleep(s.delay)
	}
	return s.Storage.Store(ctx, key, value)
}

// TestFailedEventTimedAtTheFailure: a failed attempt's event carries the
// time the retry was computed from, so its RetryAt minus its Time is the
// backoff step however long storing the state took (the event was timed
// after the store, and TestCAUnreachable's backoff check failed on a busy
// machine).
func TestFailedEventTimedAtTheFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ev := &events{}
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		CA: "https://" + addr + "/dir", AgreeTerms: true, Storage: &slowStateStorage{Storage: fs, delay: 600 * time.Millisecond},
		KeyFile: filepath.Join(dir, "kek"), Logger: testLogger(t), RetryMin: time.Second, RetryMax: 2 * time.Second, OnEvent: ev.add,
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(t.Context(), "slow.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Renew(t.Context(), RenewOptions{}); err == nil {
		t.Fatal("no error with no CA listening")
	}
	fails := ev.of(EventFailed)
	if len(fails) != 1 {
		t.Fatalf("%d failed events, want 1", len(fails))
	}
	if d := fails[0].RetryAt.Sub(fails[0].Time); d < cfg.RetryMin/2 {
		t.Errorf("retry %v after the event's time, want at least half of RetryMin (%v): the event was timed after the state was stored", d, cfg.RetryMin/2)
	}
}

// TestOrderRetryFloor: after an order that could not succeed (a failed
// validation), the next comes no sooner than 12 minutes, so that at most
// 5 fail in an hour (Let's Encrypt's limit per name); other failures keep
// the plain backoff, and a RetryMax shorter than the floor still rules.
func TestOrderRetryFloor(t *testing.T) {
	now := time.Now()
	m := &Manager{backoff: renewal.Backoff{Min: time.Minute}}
	at, failures := now, 0
	for attempt := 1; at.Before(now.Add(time.Hour)); attempt++ {
		failures++
		at = m.retryAt(at, attempt, acmeclient.BadOrder, time.Time{})
	}
	if failures > 5 {
		t.Errorf("%d failed orders within an hour, want at most 5", failures)
	}
	if d := m.retryAt(now, 1, acmeclient.Transient, time.Time{}).Sub(now); d > time.Minute {
		t.Errorf("first retry after a transient failure in %v, want the backoff's (at most 1m)", d)
	}
	short := &Manager{backoff: renewal.Backoff{Min: time.Second, Max: 5 * time.Second}}
	if d := short.retryAt(now, 1, acmeclient.BadOrder, time.Time{}).Sub(now); d > 5*time.Second {
		t.Errorf("retry in %v with RetryMax 5s, want at most 5s", d)
	}
}

// TestDNSConfigErrorRetriedSlowly: a DNS update refused for a
// configuration mistake (dns01.ErrConfig) is retried like an order that
// cannot succeed, no sooner than orderRetryFloor, not every minute or so
// (it is wrapped as the solvers and the flow wrap it).
func TestDNSConfigErrorRetriedSlowly(t *testing.T) {
	err := fmt.Errorf("obtain x: present: %w", fmt.Errorf("rfc2136: NOTAUTH (TSIG: BADKEY): %w", dns01.ErrConfig))
	if c := failureClass(err); c != acmeclient.BadOrder {
		t.Errorf("class %v, want %v", c, acmeclient.BadOrder)
	}
	if c := failureClass(errors.New("connection refused")); c != acmeclient.Transient {
		t.Errorf("class of a network error %v, want %v", c, acmeclient.Transient)
	}
}
