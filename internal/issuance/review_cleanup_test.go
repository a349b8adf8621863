package issuance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// hangingCleanUp is a solver whose removals hang until their context
// ends, as a DNS server that no longer answers or a hook that never
// exits; started is closed at the first CleanUp.
type hangingCleanUp struct{ started chan struct{} }

func (hangingCleanUp) Present(context.Context, acmeclient.Challenge) error { return nil }

func (h hangingCleanUp) CleanUp(ctx context.Context, _ acmeclient.Challenge) error {
	select {
	case <-h.started:
	default:
		close(h.started)
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestReviewCleanupSweepHonoursCancel: an answer left behind by an earlier
// run is swept at the start of Obtain. When the process is told to stop
// (SIGTERM cancels ctx) while that removal hangs, Obtain must return
// promptly: nothing is waiting on the swept answer (the CA was done with
// it, or never asked), it stays recorded and the next run tries again.
// Sweep runs it under cleanupRecorded's context.WithoutCancel and 30 s
// timeout, meant for answers of the order in hand, so the stop waits 30 s
// (per Obtain, holding the certificate's issue lock).
func TestReviewCleanupSweepHonoursCancel(t *testing.T) {
	e := newBareEnv(t)
	h := hangingCleanUp{started: make(chan struct{})}
	f := &issuance.Flow{Client: e.client, Account: e.acct, Store: e.store,
		Solvers: map[string]solvers.Solver{"dns-01": h}, Log: slog.New(slog.DiscardHandler)}
	req := dnsRequest("swept.example.test")
	left := []certstore.Challenge{{Type: "dns-01", Identifier: "swept.example.test", Token: "tok-swept", KeyAuth: "tok-swept.thumb"}}
	b, err := json.Marshal(left)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Storage().Store(t.Context(), "certs/"+req.ID+"/answers-left.json", b); err != nil {
		t.Fatal(err)
	}
	if got, err := issuance.Leftovers(t.Context(), e.store, req.ID); err != nil || len(got) != 1 {
		t.Fatalf("Leftovers = %v, %v; want the one written", got, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.Obtain(ctx, req)
		done <- err
	}()
	select {
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal("Obtain never swept the answer left behind")
	}
	cancel() // SIGTERM
	stopped := time.Now()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("Obtain still running 40 s after its context was cancelled")
	}
	if d := time.Since(stopped); d > 3*time.Second {
		t.Errorf("Obtain returned %v after its context was cancelled during the sweep of answers left behind, want < 3s", d.Round(100*time.Millisecond))
	}
	if got, err := issuance.Leftovers(t.Context(), e.store, req.ID); err != nil || len(got) != 1 {
		t.Errorf("after the interrupted sweep, Leftovers = %v, %v; want the answer still recorded", got, err)
	}
}

// switchableCleanUp is a provider whose removals fail while failing is
// set (a DNS server down for a while); removed is closed at the first
// removal that goes through.
type switchableCleanUp struct {
	dns01.Provider
	failing *atomic.Bool
	once    *sync.Once
	removed chan struct{}
}

func (p switchableCleanUp) CleanUp(ctx context.Context, recs []dns01.Record) error {
	if p.failing.Load() {
		return errors.New("server down")
	}
	if err := p.Provider.CleanUp(ctx, recs); err != nil {
		return err
	}
	p.once.Do(func() { close(p.removed) })
	return nil
}

// waitHook is a dns-01 solver whose Wait, once the record is served,
// returns hook's result: an error plays a propagation timeout, a hook
// that waits plays the time a validation takes.
type waitHook struct {
	*solvers.DNS01
	hook func() error
}

func (w waitHook) Wait(ctx context.Context, ch acmeclient.Challenge) error {
	if err := w.DNS01.Wait(ctx, ch); err != nil {
		return err
	}
	return w.hook()
}

// TestReviewCleanupRetrierRemovesResumedAnswer: process 1 presents the
// answer of a pending order and fails before asking the CA (propagation
// timeout); cleanup now removes that never-asked answer, the removal
// fails, and the dns-01 solver keeps retrying it in the background for
// up to a day, outside any issue lock. Process 2 (renew, certs --once,
// or a daemon sharing the storage) takes the lock, resumes the same
// order (same authorization, same token, same TXT value), presents the
// answer and asks the CA. Process 1's retry, once the server is back,
// deletes that record while the CA validates it: the authorization turns
// invalid and the order is lost. Before the change the pending answer was
// kept, so no removal of it could be pending anywhere.
func TestReviewCleanupRetrierRemovesResumedAnswer(t *testing.T) {
	e := newDNSEnv(t, testenv.BINDZone{Name: "example.test", Updatable: true})
	req := dnsRequest("retried.example.test")

	var failing atomic.Bool
	failing.Store(true)
	p1 := switchableCleanUp{Provider: e.prov, failing: &failing, once: new(sync.Once), removed: make(chan struct{})}
	s1 := waitHook{DNS01: e.solver(t, p1, 10*time.Second), hook: func() error {
		return errors.New("not served by every name server (propagation timeout)")
	}}
	if _, err := e.dnsFlow(s1, nil).Obtain(t.Context(), req); err == nil {
		t.Fatal("process 1 Obtain succeeded, want its propagation timeout")
	}
	if left, err := issuance.Leftovers(t.Context(), e.store, req.ID); err != nil || len(left) != 1 {
		t.Fatalf("after process 1, Leftovers = %v, %v; want its failed removal recorded", left, err)
	}

	s2 := waitHook{DNS01: e.solver(t, e.prov, 10*time.Second), hook: func() error {
		failing.Store(false) // the DNS server is back for process 1's retrier
		select {
		case <-p1.removed:
		case <-time.After(40 * time.Second):
		}
		return nil
	}}
	f2 := e.dnsFlow(s2, nil)
	if _, err := f2.Obtain(t.Context(), req); err != nil {
		select {
		case <-p1.removed:
			t.Errorf("process 2 Obtain: %v; process 1's background retry removed the answer process 2 presented for the resumed order", err)
		default:
			t.Errorf("process 2 Obtain: %v", err)
		}
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReviewCleanupUnknownStateNotKept: an attempt fails before asking
// the CA (propagation timeout) and cleanup cannot learn the
// authorization's state (the CA refuses the request). cleanup logs
// "keeping challenge answers: authorization state unknown", then removes
// the answer anyway, on the strength of the view taken before the answer
// was presented (answers.unneeded reads the stale idle flag). Either the
// answer is kept, as logged, or the message must not say so.
func TestReviewCleanupUnknownStateNotKept(t *testing.T) {
	e := newDNSEnv(t, testenv.BINDZone{Name: "example.test", Updatable: true})
	req := dnsRequest("unknown.example.test")
	s := waitHook{DNS01: e.solver(t, e.prov, 10*time.Second), hook: func() error {
		e.p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasPrefix(r.URL.Path, "/authZ/") {
				return false
			}
			testenv.WriteProblem(w, http.StatusForbidden, "unauthorized", "authorization unavailable", 0)
			return true
		})
		return errors.New("not served by every name server (propagation timeout)")
	}}
	var logs lockedBuffer
	f := e.dnsFlow(s, slog.New(slog.NewTextHandler(&logs, nil)))
	if _, err := f.Obtain(t.Context(), req); err == nil {
		t.Fatal("Obtain succeeded, want its propagation timeout")
	}
	e.p.SetFault(nil)
	got, err := e.b.TXT(t.Context(), "_acme-challenge.unknown.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if said := strings.Contains(logs.String(), "keeping challenge answers: authorization state unknown"); said && len(got) == 0 {
		t.Errorf("cleanup logged that it keeps the answer (authorization state unknown) and removed it: logs\n%s", logs.String())
	}
}
