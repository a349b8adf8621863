package tlspilot

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// maintain does what e needs now (pick up a certificate another process
// stored, ask the CA for renewal information, renew) and returns when e
// next needs attention.
func (m *Manager) maintain(ctx context.Context, e *entry) time.Time {
	m.refresh(ctx, e)
	m.checkARI(ctx, e)
	now := time.Now()
	m.mu.Lock()
	due := m.dueLocked(e, now)
	m.mu.Unlock()
	if due.After(now) {
		return due
	}
	if err := m.obtain(ctx, e); err != nil {
		if ctx.Err() != nil {
			return time.Now()
		}
		return m.fail(e, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dueLocked(e, time.Now())
}

// refresh puts in service a certificate for e that another process
// stored, and reports whether it did.
func (m *Manager) refresh(ctx context.Context, e *entry) bool {
	c, err := m.store.LoadCert(ctx, e.id)
	if err != nil {
		if !certstore.IsNotExist(err) && ctx.Err() == nil {
			m.log.Warn("read stored certificate", "cert", e.id, "error", err)
		}
		return false
	}
	m.mu.Lock()
	newer := e.cur.Load() == nil || c.Obtained.After(e.meta.obtained)
	st := e.state
	m.mu.Unlock()
	if !newer {
		return false
	}
	if fresh, err := m.store.LoadState(ctx, e.id); err == nil {
		st = fresh
	}
	ok, err := m.install(e, c, st)
	if err != nil {
		m.log.Error("stored certificate unusable", "cert", e.id, "error", err)
		return false
	}
	if ok {
		m.emit(Event{Type: EventLoaded, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: c.NotAfter})
	}
	return ok
}

// obtain orders a certificate for e: under the lock issue/<id>, after
// checking storage once more, so that processes sharing a storage never
// order the same certificate twice.
func (m *Manager) obtain(ctx context.Context, e *entry) error {
	lease, err := m.store.Storage().Lock(ctx, certstore.IssueLock(e.id))
	if err != nil {
		return fmt.Errorf("lock %s: %w", e.id, err)
	}
	defer func() {
		if err := lease.Unlock(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("unlock", "cert", e.id, "error", err)
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lease.Done():
			cancel(lease.Err())
		case <-ctx.Done():
		}
	}()
	if m.refresh(ctx, e) {
		now := time.Now()
		m.mu.Lock()
		due := m.dueLocked(e, now)
		m.mu.Unlock()
		if due.After(now) {
			return nil
		}
	}
	if err := m.limiter.wait(ctx); err != nil {
		return err
	}
	acct, err := m.account(ctx)
	if err != nil {
		return err
	}
	req, renewing := m.request(ctx, e)
	flow := issuance.Flow{Client: m.client, Account: acct, Store: m.store, Log: m.log,
		Solvers: map[string]solvers.Solver{HTTP01: m.http01, TLSALPN01: m.alpn}}
	if m.dns != nil {
		flow.Solvers[DNS01] = m.dns
	}
	c, err := flow.Obtain(ctx, req)
	if err != nil {
		if acmeclient.ClassOf(err) == acmeclient.BadAccount {
			m.forgetAccount()
		}
		return fmt.Errorf("obtain %s: %w", e.id, err)
	}
	if err := m.store.StoreCert(ctx, e.id, c); err != nil {
		return fmt.Errorf("store certificate %s: %w", e.id, err)
	}
	if err := flow.Done(ctx, e.id); err != nil {
		m.log.Warn("forget order progress", "cert", e.id, "error", err)
	}
	if err := m.store.StoreState(ctx, e.id, certstore.State{}); err != nil {
		m.log.Warn("store renewal state", "cert", e.id, "error", err)
	}
	if _, err := m.install(e, c, certstore.State{}); err != nil {
		return err
	}
	typ := EventObtained
	if renewing {
		typ = EventRenewed
	}
	m.log.Info("certificate "+string(typ), "cert", e.id, "names", e.site.names, "not_after", c.NotAfter)
	m.emit(Event{Type: typ, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: c.NotAfter})
	return nil
}

// request builds the order request for e; it names the certificate being
// replaced when the CA offers ARI.
func (m *Manager) request(ctx context.Context, e *entry) (issuance.Request, bool) {
	m.mu.Lock()
	renewing := e.cur.Load() != nil
	ariID, obtained := e.meta.ariID, e.meta.obtained
	m.mu.Unlock()
	req := issuance.Request{ID: e.id, Names: e.site.names, KeyType: e.keyType, Challenge: e.challenge,
		Profile: e.profile, After: obtained}
	if renewing && ariID != "" {
		if dir, err := m.client.Directory(ctx); err == nil && dir.RenewalInfo {
			req.Replaces = ariID
		}
	}
	return req, renewing
}

// fail records a failed attempt, reports it, and returns when to retry:
// exponential backoff with jitter, never before the CA's Retry-After.
func (m *Manager) fail(e *entry, err error) time.Time {
	now := time.Now()
	class := acmeclient.ClassOf(err)
	prob := problemOf(err)
	m.mu.Lock()
	e.state.Attempts++
	e.state.LastError = err.Error()
	e.state.LastProblem = ""
	if prob != nil {
		e.state.LastProblem = prob.Type
	}
	e.state.LastAttempt = now
	if class == acmeclient.BadNonce {
		e.state.RetryAt = now.Add(time.Second)
	} else {
		e.state.RetryAt = m.backoff.Next(now, e.state.Attempts, acmeclient.RetryAfterOf(err), jitter)
	}
	st, notAfter := e.state, e.meta.notAfter
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := m.store.StoreState(ctx, e.id, st); serr != nil {
		m.log.Warn("store renewal state", "cert", e.id, "error", serr)
	}
	m.log.Error("certificate attempt failed", "cert", e.id, "names", e.site.names, "attempt", st.Attempts,
		"retry_in", st.RetryAt.Sub(now).Round(time.Second), "error", err)
	m.emit(Event{Type: EventFailed, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: notAfter,
		Attempt: st.Attempts, RetryAt: st.RetryAt, Err: err, Problem: prob})
	return st.RetryAt
}

// checkARI refreshes e's renewal window from the CA when it is due.
func (m *Manager) checkARI(ctx context.Context, e *entry) {
	now := time.Now()
	m.mu.Lock()
	cur := e.cur.Load()
	ariID := e.meta.ariID
	stale := ariID != "" && (e.state.ARIFor != ariID || !now.Before(e.state.ARICheckAfter))
	m.mu.Unlock()
	if cur == nil || !stale {
		return
	}
	leaf, err := x509.ParseCertificate(cur.Certificate[0])
	if err != nil {
		return
	}
	ri, err := m.client.RenewalInfo(ctx, leaf)
	m.mu.Lock()
	if e.meta.ariID != ariID {
		m.mu.Unlock()
		return
	}
	e.state.ARIFor = ariID
	switch {
	case err == nil:
		e.state.ARIStart, e.state.ARIEnd = ri.Start, ri.End
		e.state.ARICheckAfter = ri.RetryAfter
		if ri.RetryAfter.IsZero() || ri.RetryAfter.Before(now.Add(time.Minute)) {
			e.state.ARICheckAfter = now.Add(6 * time.Hour)
		}
	case errors.Is(err, acmeclient.ErrNoARI):
		e.state.ARICheckAfter = now.Add(24 * time.Hour)
	default:
		m.log.Warn("renewal information", "cert", e.id, "error", err)
		e.state.ARICheckAfter = now.Add(time.Hour)
	}
	st := e.state
	m.mu.Unlock()
	if err := m.store.StoreState(ctx, e.id, st); err != nil && ctx.Err() == nil {
		m.log.Warn("store renewal state", "cert", e.id, "error", err)
	}
}
