package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// brokenOrderer fails each order for the names it was told to fail
// with, and hands the others to the real engine.
type brokenOrderer struct {
	real Orderer
	mu   sync.Mutex
	fail map[string]error // by first name
	hits map[string]int   // orders asked for, by first name
}

func (o *brokenOrderer) ObtainCSRReplacing(ctx context.Context, id string, csr *x509.CertificateRequest, names []string, old *x509.Certificate) (tlspilot.CSRCertificate, error) {
	o.mu.Lock()
	o.hits[names[0]]++
	err := o.fail[names[0]]
	o.mu.Unlock()
	if err != nil {
		return tlspilot.CSRCertificate{}, err
	}
	return o.real.ObtainCSRReplacing(ctx, id, csr, names, old)
}

// set makes the orders for name fail with err (nil: succeed).
func (o *brokenOrderer) set(name string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fail[name] = err
}

// count returns how many orders were asked for name.
func (o *brokenOrderer) count(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[name]
}

// TestIssuerRetriesFixedFailureAfterRestart: a failed order (a TSIG key
// the DNS server refuses) is answered as failed until its retry time,
// also once its cause is fixed, and after a restart that changed nothing
// (an issuer restarting in a loop must keep its backoff); an issuer
// restarted with other [dns] settings (its Setup) orders again at the
// next request (the real engine: Pebble, BIND) and hands out the
// certificate. A failure the CA asked to wait for (rate limited, with
// Retry-After) is still answered as failed then, without a new order.
func TestIssuerRetriesFixedFailureAfterRestart(t *testing.T) {
	ctx := t.Context()
	e := startEngine(t)
	o := &brokenOrderer{real: e.m, fail: map[string]error{}, hits: map[string]int{}}
	o.set("web1.example.test", errors.New("dns-01: present: rfc2136: update refused: TSIG error BADSIG"))
	o.set("rl.example.test", &acmeclient.Error{Op: "new order", Type: "urn:ietf:params:acme:error:rateLimited", Status: 429,
		Detail: "too many certificates", RetryAfter: time.Now().Add(3 * time.Hour), Class: acmeclient.RateLimited})
	is := startOrderingIssuerSetup(t, o, nil, nil, nil, "setup-1")
	id := is.enrolFor(t, "web1", "web1.example.test", "rl.example.test")
	_, csr := newCSR(t, nil, "web1.example.test")
	_, rlCSR := newCSR(t, nil, "rl.example.test")
	for _, r := range [][]byte{csr, rlCSR} {
		if resp, err := obtain(ctx, is.client(t, id), r, false); err != nil || resp.Status != CertFailed || resp.RetryAfter < 30 {
			t.Fatalf("a failing order: %+v, %v", resp, err)
		}
	}
	o.set("web1.example.test", nil) // the operator fixes the TSIG key
	o.set("rl.example.test", nil)
	if resp, err := is.client(t, id).Certificate(ctx, csr, false); err != nil || resp.Status != CertFailed {
		t.Errorf("before a restart: %+v, %v; want the failure until its retry time", resp, err)
	}

	is.stop()
	is = startOrderingIssuerSetup(t, o, is.st, is.ca, is.audit, "setup-1")
	if resp, err := is.client(t, id).Certificate(ctx, csr, false); err != nil || resp.Status != CertFailed {
		t.Errorf("after a restart with the same setup: %+v, %v; want the failure until its retry time", resp, err)
	}
	is.stop()
	is = startOrderingIssuerSetup(t, o, is.st, is.ca, is.audit, "setup-2") // the TSIG secret changed
	c := is.client(t, id)
	if resp, err := obtain(ctx, c, csr, false); err != nil || resp.Status != CertValid {
		t.Errorf("after the fix and a restart: %+v, %v; want a new order and the certificate", resp, err)
	}
	resp, err := obtain(ctx, c, rlCSR, false)
	if err != nil || resp.Status != CertFailed || resp.RetryAfter < int((2*time.Hour).Seconds()) {
		t.Errorf("rate limited, after a restart: %+v, %v; want the failure until the CA's Retry-After", resp, err)
	}
	if n := o.count("rl.example.test"); n != 1 {
		t.Errorf("%d orders for the rate-limited names, want 1", n)
	}
	if n := o.count("web1.example.test"); n != 2 {
		t.Errorf("%d orders for the fixed names, want 2", n)
	}
}
