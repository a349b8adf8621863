package tlspilot

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// sharedRetryConfig is a Config for Managers sharing one storage whose
// first retry comes long after the test: nothing serves the challenges,
// so every order fails at validation.
func sharedRetryConfig(t *testing.T, p *testenv.Pebble) Config {
	t.Helper()
	cfg := testConfig(t, p, nil)
	cfg.RetryMin, cfg.RetryMax = 10*time.Minute, time.Hour
	return cfg
}

// newManaging returns a Manager over cfg's storage managing name; it does
// not run.
func newManaging(t *testing.T, cfg Config, name string) *Manager {
	t.Helper()
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return m
}

// renewStepsOf runs m.Renew with opts and returns the steps reported and
// Renew's error.
func renewStepsOf(t *testing.T, m *Manager, opts RenewOptions) ([]string, error) {
	t.Helper()
	var mu sync.Mutex
	var steps []string
	opts.Progress = func(_, step string) {
		mu.Lock()
		steps = append(steps, step)
		mu.Unlock()
	}
	err := m.Renew(t.Context(), opts)
	mu.Lock()
	defer mu.Unlock()
	return steps, err
}

// TestSharedRetryRenew: two Managers on one storage, both managing a
// certificate before either tried it. A's attempt fails; B's Renew then
// takes A's failure up from the storage and waits for its retry time
// (StepRetryWait, no order placed) instead of ordering, and its status
// reports A's attempt. Once the retry time has come, B's failure counts on
// from the stored attempt, and A, Renewing again, waits for B's retry.
func TestSharedRetryRenew(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := sharedRetryConfig(t, p)
	const name = "bo.example.test"
	a, b := newManaging(t, cfg, name), newManaging(t, cfg, name)

	if steps, err := renewStepsOf(t, a, RenewOptions{}); err == nil {
		t.Fatalf("A's attempt did not fail (nothing answers the challenges): steps %q", steps)
	}
	orders := p.RequestsTo("/order-plz")
	steps, err := renewStepsOf(t, b, RenewOptions{})
	if err != nil || len(steps) != 1 || !strings.HasPrefix(steps[0], StepRetryWait+" until ") {
		t.Errorf("B after A's failure: steps %q, error %v; want only %q and A's retry time", steps, err, StepRetryWait)
	}
	if n := p.RequestsTo("/order-plz") - orders; n != 0 {
		t.Errorf("B placed %d orders during A's retry delay, want none", n)
	}
	if st := b.Status()[0]; st.Attempts != 1 || st.LastError == "" || time.Until(st.NextRenewal) < 5*time.Minute {
		t.Errorf("B's status: attempts %d, last error %q, next renewal %v; want A's attempt and retry time",
			st.Attempts, st.LastError, st.NextRenewal)
	}

	// The retry time comes: B tries, fails, and counts on from A's attempt.
	st := storedState(t, b)
	st.RetryAt = time.Now().Add(-time.Second)
	if err := b.store.StoreState(t.Context(), b.Status()[0].ID, st); err != nil {
		t.Fatal(err)
	}
	if steps, err := renewStepsOf(t, b, RenewOptions{}); err == nil {
		t.Fatalf("B's attempt did not fail: steps %q", steps)
	}
	if st := storedState(t, b); st.Attempts != 2 {
		t.Errorf("stored attempts after A's and B's failures: %d, want 2", st.Attempts)
	}
	orders = p.RequestsTo("/order-plz")
	if steps, _ := renewStepsOf(t, a, RenewOptions{}); len(steps) != 1 || !strings.HasPrefix(steps[0], StepRetryWait) {
		t.Errorf("A after B's failure: steps %q, want only %q", steps, StepRetryWait)
	}
	if st := a.Status()[0]; st.Attempts != 2 || p.RequestsTo("/order-plz") != orders {
		t.Errorf("A after B's failure: attempts %d, %d orders; want 2 and none", st.Attempts, p.RequestsTo("/order-plz")-orders)
	}
}

// TestSharedRetryForce: a forced renewal is not held back by another
// process's retry time.
func TestSharedRetryForce(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := sharedRetryConfig(t, p)
	const name = "force.example.test"
	a, b := newManaging(t, cfg, name), newManaging(t, cfg, name)
	if _, err := renewStepsOf(t, a, RenewOptions{}); err == nil {
		t.Fatal("A's attempt did not fail")
	}
	orders := p.RequestsTo("/order-plz")
	steps, err := renewStepsOf(t, b, RenewOptions{Force: true})
	if err == nil || p.RequestsTo("/order-plz") == orders {
		t.Errorf("forced: steps %q, error %v, no order; want an attempt at once", steps, err)
	}
	if st := storedState(t, b); st.Attempts != 2 {
		t.Errorf("stored attempts after both failures: %d, want 2", st.Attempts)
	}
}

// TestSharedRetryRun: two Managers running on one storage (a cluster)
// start managing a certificate at once. Only one of them orders it; the
// other finds the failure recorded under the issue lock and waits for
// its retry time, so the CA sees one failed order per retry step, and
// both report the same attempt.
func TestSharedRetryRun(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := sharedRetryConfig(t, p)
	evA, evB := &events{}, &events{}
	cfgA, cfgB := cfg, cfg
	cfgA.OnEvent, cfgB.OnEvent = evA.add, evB.add
	a, b := startManager2(t, p, cfgA), startManager2(t, p, cfgB)
	const name = "run.example.test"
	var wg sync.WaitGroup
	for _, m := range []*Manager{a, b} {
		wg.Go(func() {
			if err := m.Manage(context.Background(), name); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for len(evA.of(EventFailed))+len(evB.of(EventFailed)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // time for the other to order, if it were to
	if n := len(evA.of(EventFailed)) + len(evB.of(EventFailed)); n != 1 {
		t.Errorf("%d failed attempts, want 1 for the two Managers", n)
	}
	if n := p.RequestsTo("/order-plz"); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	for i, m := range []*Manager{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		st := m.Status()[0]
		for (st.Attempts != 1 || st.Renewing) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			st = m.Status()[0]
		}
		if st.Attempts != 1 || st.LastError == "" || time.Until(st.NextRenewal) < 5*time.Minute {
			t.Errorf("Manager %d: attempts %d, last error %q, next renewal %v; want the one attempt and its retry time",
				i, st.Attempts, st.LastError, st.NextRenewal)
		}
	}
}

// slowFailures is a storage whose writes of a renewal state that records
// a failed attempt take a second.
type slowFailures struct{ storage.Storage }

func (s slowFailures) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasSuffix(key, "/state.json") && bytes.Contains(value, []byte(`"attempts":`)) {
		time.Sleep(time.Second)
	}
	return s.Storage.Store(ctx, key, value)
}

// TestSharedRetryRecordedUnderLock: a failed attempt is recorded before
// the issue lock is released, so that a process that waited for the lock
// meanwhile finds the failure and waits for its retry, however slowly the
// storage takes the record.
func TestSharedRetryRecordedUnderLock(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := sharedRetryConfig(t, p)
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Storage = slowFailures{fs}
	const name = "lock.example.test"
	a, b := newManaging(t, cfg, name), newManaging(t, cfg, name)
	validating := make(chan struct{})
	var once sync.Once
	aDone := make(chan error, 1)
	go func() {
		aDone <- a.Renew(t.Context(), RenewOptions{Progress: func(_, step string) {
			if step == StepValidating {
				once.Do(func() { close(validating) })
			}
		}})
	}()
	select {
	case <-validating:
	case err := <-aDone:
		t.Fatalf("A's attempt ended before validating: %v", err)
	}
	steps, err := renewStepsOf(t, b, RenewOptions{}) // waits for A's lock
	if aerr := <-aDone; aerr == nil {
		t.Fatal("A's attempt did not fail")
	}
	if err != nil || len(steps) != 1 || !strings.HasPrefix(steps[0], StepRetryWait+" until ") {
		t.Errorf("B after waiting for A's lock: steps %q, error %v; want only %q", steps, err, StepRetryWait)
	}
	if n := p.RequestsTo("/order-plz"); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}

// TestSharedRetrySeenByRunningPeer: a failed attempt of one process is
// taken up by a running Manager sharing the storage at its next read of
// the changes record, not only at its next pass: its status reports the
// failing certificate at once.
func TestSharedRetrySeenByRunningPeer(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := sharedRetryConfig(t, p)
	cfg.StoragePoll = 100 * time.Millisecond
	cfgB := cfg
	cfgB.OnEvent = ev.add
	const name = "peer.example.test"
	b := startManager(t, p, cfgB)
	if err := b.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	refuseOrders(p)
	a := newManaging(t, cfg, name)
	if _, err := renewStepsOf(t, a, RenewOptions{Force: true}); err == nil {
		t.Fatal("A's forced renewal did not fail (orders are refused)")
	}
	deadline := time.Now().Add(5 * time.Second)
	st := b.Status()[0]
	for st.Attempts != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = b.Status()[0]
	}
	if st.Attempts != 1 || st.State != StateFailing || st.LastError == "" {
		t.Errorf("running peer's status: state %s, attempts %d, last error %q; want A's failure", st.State, st.Attempts, st.LastError)
	}
}
