package tlspilot

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestRenewOnceNoStartCheck: what `tlspilot certs --once` does at each
// run of its timer, a new Manager over the stored certificate and Renew
// with NoStartCheck, sends no request to the CA while nothing is due,
// although the CA offers renewal information (ARI) and a Manager that
// runs asks for it once after every start. When the stored answer's
// Retry-After has passed, the check is due: one run asks for renewal
// information (and nothing else), stores the answer, and the next run is
// silent again.
func TestRenewOnceNoStartCheck(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	const name = "once.example.test"
	r := newRestartable(t, p, cfg)
	r.start(name)
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	r.halt()

	// Without NoStartCheck, Renew makes the check after a start.
	ari := p.RequestsTo(ariPath)
	renewOnce(t, cfg, name, RenewOptions{})
	if n := p.RequestsTo(ariPath) - ari; n != 1 {
		t.Errorf("Renew after a start: %d renewal information requests, want 1", n)
	}

	requests, ari, orders := p.Requests(), p.RequestsTo(ariPath), p.Orders()
	m, steps := renewOnce(t, cfg, name, RenewOptions{NoStartCheck: true})
	if n := p.Requests() - requests; n != 0 || steps != StepNotDue {
		t.Errorf("nothing due: %d requests to the CA, step %q; want none, %q", n, steps, StepNotDue)
	}

	// The stored renewal information is stale: its Retry-After passed
	// while no process ran.
	id := m.Status()[0].ID
	st := storedState(t, m)
	st.ARICheckAfter = time.Now().Add(-time.Minute)
	if err := m.store.StoreState(t.Context(), id, st); err != nil {
		t.Fatal(err)
	}
	requests = p.Requests()
	m, steps = renewOnce(t, cfg, name, RenewOptions{NoStartCheck: true})
	if n := p.RequestsTo(ariPath) - ari; n != 1 || steps != StepNotDue {
		t.Errorf("stale renewal information: %d requests for it, step %q; want 1, %q", n, steps, StepNotDue)
	}
	if n := p.Orders() - orders; n != 0 {
		t.Errorf("%d orders, want none", n)
	}
	if next := storedState(t, m).ARICheckAfter; time.Until(next) < time.Hour {
		t.Errorf("next renewal information check stored for %v, want Pebble's Retry-After (6h)", next)
	}
	t.Logf("stale renewal information: %d request(s) to the CA in all", p.Requests()-requests)

	requests = p.Requests()
	if _, steps = renewOnce(t, cfg, name, RenewOptions{NoStartCheck: true}); p.Requests() != requests || steps != StepNotDue {
		t.Errorf("after the check: %d requests, step %q; want none, %q", p.Requests()-requests, steps, StepNotDue)
	}
}

// renewOnce starts a Manager managing name over cfg's storage, as a
// process of `certs --once` does, and renews with opts. It returns the
// Manager and the last step reported.
func renewOnce(t *testing.T, cfg Config, name string, opts RenewOptions) (*Manager, string) {
	t.Helper()
	m, steps, err := renewSteps(t, cfg, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, steps[len(steps)-1]
}

// renewSteps is renewOnce returning every step reported and Renew's
// error.
func renewSteps(t *testing.T, cfg Config, name string, opts RenewOptions) (*Manager, []string, error) {
	t.Helper()
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var steps []string
	opts.Progress = func(_, step string) {
		mu.Lock()
		steps = append(steps, step)
		mu.Unlock()
	}
	err = m.Renew(t.Context(), opts)
	mu.Lock()
	defer mu.Unlock()
	return m, steps, err
}

// refuseOrders has Pebble refuse every new order while the returned flag
// is set (it starts set).
func refuseOrders(p *testenv.Pebble) *atomic.Bool {
	refuse := new(atomic.Bool)
	refuse.Store(true)
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/order-plz" || !refuse.Load() {
			return false
		}
		testenv.WriteProblem(w, http.StatusServiceUnavailable, "serverInternal", "orders refused by the test", 0)
		return true
	})
	return refuse
}

// TestRenewRetryWait: after a failed attempt, Renew without Force on
// another Manager over the same storage (the next `tlspilot renew`)
// reports StepRetryWait with the retry time rather than StepNotDue, and
// asks the CA nothing; with Force it orders at once (no challenge server
// runs here, so that order goes no further).
func TestRenewRetryWait(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	// A retry delay no slow machine outlasts between the two renews (the
	// tests' 1 s would let the second one try again).
	cfg.RetryMin, cfg.RetryMax = time.Minute, 2*time.Minute
	refuse := refuseOrders(p)
	const name = "retrywait.example.test"
	last := func(opts RenewOptions) (string, []string, error) {
		_, steps, err := renewSteps(t, cfg, name, opts)
		return steps[len(steps)-1], steps, err
	}
	step, all, err := last(RenewOptions{})
	if err == nil || !strings.HasPrefix(step, StepFailed) {
		t.Fatalf("first attempt: step %q, error %v; want it to fail", step, err)
	}
	if len(all) < 3 || all[0] != StepContacting || all[1] != StepOrdering {
		t.Errorf("first attempt's steps %q, want %q, %q, then the failure", all, StepContacting, StepOrdering)
	}
	requests := p.Requests()
	step, _, err = last(RenewOptions{})
	if err != nil || !strings.HasPrefix(step, StepRetryWait+" until ") {
		t.Errorf("after the failure: step %q, error %v; want %q and the time", step, err, StepRetryWait)
	}
	if at, perr := time.Parse(time.RFC3339, strings.TrimPrefix(step, StepRetryWait+" until ")); perr != nil || !at.After(time.Now()) {
		t.Errorf("retry time in %q: %v, %v", step, at, perr)
	}
	if n := p.Requests() - requests; n != 0 {
		t.Errorf("%d requests to the CA while waiting to retry, want none", n)
	}
	refuse.Store(false)
	orders := p.RequestsTo("/order-plz")
	if step, _, _ := last(RenewOptions{Force: true}); strings.HasPrefix(step, StepRetryWait) || p.RequestsTo("/order-plz") == orders {
		t.Errorf("forced: step %q and no new order; want an attempt at once", step)
	}
}

// TestRenewFailuresJoined: Renew returns the failure of every
// certificate, not only the first one's; a failure its caller is shown
// through Progress (`tlspilot renew` prints it on the certificate's line)
// is logged at info, one without Progress at error.
func TestRenewFailuresJoined(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	log := &recordLog{}
	cfg.Logger = slog.New(log)
	refuseOrders(p)
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"one.example.test", "two.example.test"}
	if err := m.ManageCerts(t.Context(), Cert{Names: names[:1]}, Cert{Names: names[1:]}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		progress func(string, string)
		level    slog.Level
	}{{func(string, string) {}, slog.LevelInfo}, {nil, slog.LevelError}} {
		log.reset()
		err := m.Renew(t.Context(), RenewOptions{Force: true, Progress: c.progress})
		var joined interface{ Unwrap() []error }
		if !errors.As(err, &joined) || len(joined.Unwrap()) != len(names) {
			t.Fatalf("Renew with Progress %t: %v; want both certificates' failures", c.progress != nil, err)
		}
		for _, n := range names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("Renew's error does not name %s: %v", n, err)
			}
		}
		if got := log.levels("certificate attempt failed"); len(got) != len(names) || got[0] != c.level || got[1] != c.level {
			t.Errorf("Renew with Progress %t logged its failures at %v, want %v each", c.progress != nil, got, c.level)
		}
	}
}

// recordLog is a slog.Handler that keeps the level of every record by
// message.
type recordLog struct {
	mu  sync.Mutex
	got map[string][]slog.Level
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordLog) WithGroup(string) slog.Handler            { return l }

func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.got == nil {
		l.got = make(map[string][]slog.Level)
	}
	l.got[r.Message] = append(l.got[r.Message], r.Level)
	return nil
}

func (l *recordLog) levels(msg string) []slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[msg]
}

func (l *recordLog) reset() {
	l.mu.Lock()
	l.got = nil
	l.mu.Unlock()
}

// TestInterruptedOrderResumed: a `tlspilot renew --force` killed in the
// middle of its order leaves the order saved (status: renewing). The
// next Renew, without Force, resumes that very order (no new one) rather
// than saying the certificate is not due; so does a Manager's own pass,
// which is the same code (maintain, through interrupted). Before, the
// order stayed saved for ever and its certificate was never fetched.
func TestInterruptedOrderResumed(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	const name = "interrupted.example.test"
	obtain(t, p, cfg, Cert{Names: []string{name}})

	killed, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	// Pebble reuses a valid authorization 1% of the time even when told
	// never to (testenv.PebbleOptions.AuthzReuse): the order then has
	// nothing to present and completes, so the renewal is tried again
	// until one presents (at most a few times).
	for try := 0; ; try++ {
		ctx, stop := context.WithCancel(t.Context())
		presented := false
		_ = killed.Renew(ctx, RenewOptions{Force: true, Progress: func(_, step string) {
			if step == StepPresenting {
				presented = true
				stop() // the order is placed and saved: the process dies here
			}
		}})
		stop()
		if presented || try == 4 {
			break
		}
	}
	id := killed.Status()[0].ID
	if !killed.store.HasProgress(t.Context(), id) {
		t.Fatal("no order saved by the interrupted renewal")
	}
	orders := p.Orders()

	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveChallenges(t, p, m)
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	var steps []string
	var mu sync.Mutex
	renew := func() (string, error) {
		mu.Lock()
		steps = nil
		mu.Unlock()
		err := m.Renew(t.Context(), RenewOptions{Progress: func(_, step string) {
			mu.Lock()
			steps = append(steps, step)
			mu.Unlock()
		}})
		mu.Lock()
		defer mu.Unlock()
		if len(steps) == 0 {
			return "", err
		}
		return steps[len(steps)-1], err
	}

	// Another process's failure holds the retry back: its stored retry
	// time is kept, though this process has none of its own.
	st, err := m.store.LoadState(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	st.RetryAt = time.Now().Add(time.Hour)
	if err := m.store.StoreState(t.Context(), id, st); err != nil {
		t.Fatal(err)
	}
	if step, err := renew(); err != nil || step == StepDone || p.Orders() != orders || !m.store.HasProgress(t.Context(), id) {
		t.Errorf("a retry stored by another process: step %q, %v, %d orders; want it waited for, the order kept", step, err, p.Orders()-orders)
	}
	st.RetryAt = time.Time{}
	if err := m.store.StoreState(t.Context(), id, st); err != nil {
		t.Fatal(err)
	}

	if step, err := renew(); err != nil || step != StepDone {
		t.Fatalf("Renew after the interrupted one: %v, step %q; want the order completed", err, step)
	}
	if m.store.HasProgress(t.Context(), id) {
		t.Error("the interrupted order is still saved")
	}
	if n := p.Orders() - orders; n != 0 {
		t.Errorf("%d new orders, want the saved one resumed", n)
	}

	// An order saved before the certificate in service was obtained is
	// that certificate's own (a process stopped between storing it and
	// forgetting the order): dropped, not resumed as a new order.
	if err := m.store.StoreProgress(t.Context(), id, certstore.Progress{Names: []string{name},
		OrderURL: "https://ca.invalid/order/1", Created: m.Status()[0].NotBefore.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if st := ReadStatus(t.Context(), cfg, Cert{Names: []string{name}}).Certificates[0]; st.Renewing || st.State != StateValid {
		t.Errorf("status with the certificate's own order left saved: %s, renewing %t; want valid", st.State, st.Renewing)
	}
	orders = p.Orders()
	if step, err := renew(); err != nil || step != StepNotDue || p.Orders() != orders || m.store.HasProgress(t.Context(), id) {
		t.Errorf("the served certificate's own order left saved: step %q, %v, %d orders, saved %t; want it dropped, not due",
			step, err, p.Orders()-orders, m.store.HasProgress(t.Context(), id))
	}
}

// TestReadStatusOrderWithKey: status, which has no key-encryption key,
// reports a certificate whose saved order holds a sealed key (a CSR's,
// saved before finalizing) as renewing. A first version opened the key
// to read when the order was placed, and crashed on the missing KEK.
func TestReadStatusOrderWithKey(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	c := Cert{Names: []string{"orderkey.example.test"}}
	obtain(t, p, cfg, c)
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	id := m.Status()[0].ID
	if err := m.store.StoreProgress(t.Context(), id, certstore.Progress{Names: c.Names, OrderURL: "https://ca.invalid/order/2",
		Created: time.Now(), Key: k}); err != nil {
		t.Fatal(err)
	}
	if st := ReadStatus(t.Context(), cfg, c).Certificates[0]; !st.Renewing {
		t.Errorf("status with an order in progress: %s, renewing %t; want renewing", st.State, st.Renewing)
	}
}
