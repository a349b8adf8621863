package issuance_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestResumeWhileCAValidates stops an order 200 ms after the CA accepted
// its http-01 challenge, while the CA is still validating: its fetch of the
// answer is held for at least 4 s, and until the resumed run has looked at
// the order. The stopped run must leave the answer presented; the resumed
// run must not ask for the validation again ("Cannot update challenge with
// status processing"), must keep serving the answer, and must obtain the
// certificate from the one order.
func TestResumeWhileCAValidates(t *testing.T) {
	e := newBareEnv(t)
	gate := e.p.GateHTTP01(t)
	serve(t, gate.BackendPort, e.http01.Handler(nil))
	req := request("validating.example.test")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acceptedAt := make(chan time.Time, 1)
	e.p.SetFault(stopAfter(t, e.p, "/chalZ/", func(*http.Request) {
		acceptedAt <- time.Now()
		time.AfterFunc(200*time.Millisecond, cancel)
	}))
	if _, err := e.flow().Obtain(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Obtain returned %v, want it canceled while the CA validates", err)
	}
	at := <-acceptedAt
	select {
	case <-gate.Held():
	case <-time.After(time.Minute):
		t.Fatal("the CA did not try to fetch the answer within 1m")
	}
	ch := checkStillValidating(t, e, req)

	accepts := e.p.RequestsTo("/chalZ/")
	openWhenLookedAt(t, e.p, gate, at.Add(4*time.Second), 2*time.Second)
	c, err := e.flow().Obtain(t.Context(), req)
	if err != nil {
		t.Fatalf("resumed Obtain: %v", err)
	}
	if len(c.Names) != 1 || c.Names[0] != req.Names[0] {
		t.Errorf("certificate for %v, want %v", c.Names, req.Names)
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
	if n := e.p.RequestsTo("/chalZ/") - accepts; n != 0 {
		t.Errorf("the resumed run asked the CA %d times to validate a challenge it was validating", n)
	}
	if err := e.flow().Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	if ka, err := e.store.LoadHTTP01(t.Context(), ch.Token); !certstore.IsNotExist(err) {
		t.Errorf("the answer is still stored after the certificate was obtained (%q, %v)", ka, err)
	}
}

// checkStillValidating checks that the CA is validating the challenge of
// req's saved order, and that the stopped run left its answer stored and
// recorded in the progress.
func checkStillValidating(t *testing.T, e *env, req issuance.Request) acmeclient.Challenge {
	t.Helper()
	p, err := e.store.LoadProgress(t.Context(), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.client.GetAuthz(t.Context(), e.acct, p.Authzs[0])
	if err != nil {
		t.Fatal(err)
	}
	var ch acmeclient.Challenge
	for _, c := range a.Challenges {
		if c.Type == req.Challenge {
			ch = c
		}
	}
	if ch.Status != acmeclient.StatusProcessing {
		t.Fatalf("the challenge is %q at the CA, want it processing", ch.Status)
	}
	if len(p.Challenges) != 1 || p.Challenges[0].Token != ch.Token {
		t.Errorf("the stopped run left %+v recorded, want the answer the CA is fetching", p.Challenges)
	}
	if ka, err := e.store.LoadHTTP01(t.Context(), ch.Token); err != nil || ka != ch.KeyAuthorization {
		t.Errorf("the stopped run removed the answer the CA is about to fetch (%q, %v)", ka, err)
	}
	return ch
}

// openWhenLookedAt opens gate once a run has fetched an authorization and
// had settle to act on what it saw, and not before notBefore.
func openWhenLookedAt(t *testing.T, p *testenv.Pebble, gate *testenv.HTTP01Gate, notBefore time.Time, settle time.Duration) {
	t.Helper()
	looked := make(chan struct{})
	var once sync.Once
	p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get(passHeader) == "" && strings.HasPrefix(r.URL.Path, "/authZ/") {
			once.Do(func() { close(looked) })
		}
		return false
	})
	t.Cleanup(func() { p.SetFault(nil) })
	go func() {
		select {
		case <-looked:
		case <-time.After(time.Minute):
		}
		time.Sleep(max(time.Until(notBefore), settle))
		gate.Open()
	}()
}

// TestAcceptReplyLost loses the CA's reply to the request that accepted
// the challenge: the CA validates, the client sees a server error (and,
// asking again, "Cannot update challenge"). The flow must find the
// challenge taken up and wait for it, not fail the attempt.
func TestAcceptReplyLost(t *testing.T) {
	e := newEnv(t)
	req := request("accept-lost.example.test")
	e.p.SetFault(loseReply(t, e.p, "/chalZ/"))
	if _, err := e.flow().Obtain(t.Context(), req); err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
}

// loseReply returns a Pebble fault that passes the first request whose
// path starts with prefix to Pebble and, once Pebble accepted it, answers
// the client with a server error instead of Pebble's reply. A refusal such
// as badNonce is handed back to the client, which retries.
func loseReply(t *testing.T, p *testenv.Pebble, prefix string) func(http.ResponseWriter, *http.Request) bool {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var lost atomic.Bool
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get(passHeader) != "" || lost.Load() || !strings.HasPrefix(r.URL.Path, prefix) {
			return false
		}
		resp, body, err := forward(client, p.DirectoryURL, r)
		switch {
		case err != nil:
			testenv.WriteProblem(w, http.StatusBadGateway, "serverInternal", err.Error(), 0)
		case resp.StatusCode < 300 && lost.CompareAndSwap(false, true):
			testenv.WriteProblem(w, http.StatusServiceUnavailable, "serverInternal", "the reply was lost", 0)
		default:
			relay(w, resp, body)
		}
		return true
	}
}
