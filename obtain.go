package tlspilot

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/storage"
)

// maintain does what e needs now (pick up a certificate another process
// stored, ask the CA for renewal information, renew) and returns when e
// next needs attention.
//
// While the storage is unreachable it does nothing but warn of expiry:
// the certificate in service stays in service, and the pass is made again
// when the storage is back (checkStorage). An attempt that fails while
// the storage is unreachable is not counted as failed either.
func (m *Manager) maintain(ctx context.Context, e *entry) time.Time {
	if m.health.wait(e.id) {
		m.noticeExpiry(ctx, e)
		return time.Now().Add(m.cfg.StoragePoll)
	}
	m.refresh(ctx, e)
	m.checkARI(ctx, e)
	m.noticeExpiry(ctx, e)
	resume := false
	if due := m.plan(ctx, e, false); due.After(time.Now()) {
		if resume = m.interrupted(ctx, e); !resume {
			return due
		}
	}
	if err := m.obtain(ctx, e, obtainOptions{resume: resume}); err != nil {
		var wait *retryWait
		var failed *failedAttempt
		switch {
		case errors.As(err, &wait):
			return m.plan(ctx, e, false)
		case errors.As(err, &failed):
			m.noticeExpiry(ctx, e)
			return failed.retryAt
		case ctx.Err() != nil:
			return time.Now()
		}
		if _, ok := m.checkStorage(ctx); !ok && m.health.wait(e.id) {
			m.log.Warn("certificate attempt stopped with the storage unreachable: it resumes when the storage is back",
				"cert", e.id, "names", e.site.names, "error", err)
			return time.Now().Add(m.cfg.StoragePoll)
		}
		next := m.fail(e, err, false)
		m.noticeExpiry(ctx, e)
		return next
	}
	return m.plan(ctx, e, false)
}

// interrupted reports whether e has an order saved that is still to be
// completed, by a process that stopped or one ordering now (obtain tells
// them apart under the lock), and no retry is pending, in this process or
// as stored by another: a failed attempt keeps its order saved for its
// retry, which must not come sooner. An order saved before the
// certificate in service was obtained is that certificate's own, left by
// a process stopped between storing it and forgetting the order: it is
// dropped, never resumed (resuming would order anew, as it is stale).
func (m *Manager) interrupted(ctx context.Context, e *entry) bool {
	now := time.Now()
	if e.retryAt().After(now) {
		return false
	}
	created, err := m.store.ProgressCreated(ctx, e.id)
	if err != nil {
		return false
	}
	if obtained := e.snapshot().meta.obtained; staleOrder(created, obtained) {
		if err := m.store.DeleteProgress(ctx, e.id); err != nil {
			m.log.Warn("forget the order of the certificate in service", "cert", e.id, "error", err)
		}
		return false
	} else if !created.After(obtained) {
		return false // within the clock skew of another node's new order: left alone
	}
	st, err := m.store.LoadState(ctx, e.id)
	return err == nil && !st.RetryAt.After(now)
}

// staleOrder reports whether an order saved at created belongs to the
// certificate obtained at obtained, or an earlier one: made well before
// it (orderClockSkew), so that a new order of another node whose clock
// runs behind is never taken for it.
func staleOrder(created, obtained time.Time) bool {
	return !obtained.IsZero() && created.Before(obtained.Add(-orderClockSkew))
}

// orderClockSkew is how far apart the clocks of the processes sharing a
// storage may be, for staleOrder.
const orderClockSkew = 10 * time.Minute

// noticeExpiry sends the "expired" or "expiring" notice about e's
// certificate when one is due, logged at ERROR: the certificate in
// service is about to stop working, or has. Processes sharing the
// storage send it once between them: the decision is taken under the
// storage lock notice/<id>, after taking up what the others recorded
// (noticeLock).
func (m *Manager) noticeExpiry(ctx context.Context, e *entry) {
	now := time.Now()
	if _, due := e.expiryDue(now, m.cfg.WarnWindow); !due {
		return
	}
	unlock, ok := m.noticeLock(ctx, e.id)
	if !ok {
		return // stopping: the notice stays due for the next start
	}
	defer unlock()
	// A certificate another process stored meanwhile is put in service
	// first (the notice is then no longer due), so that the state stored
	// below is never the old certificate's over the new one's.
	m.refresh(ctx, e)
	if st, err := m.store.LoadState(ctx, e.id); err == nil {
		e.adoptNotices(st)
	}
	typ, st, ok := e.expiryNotice(now, m.cfg.WarnWindow)
	if !ok {
		return
	}
	if err := m.store.StoreState(context.WithoutCancel(ctx), e.id, st); err != nil {
		m.log.Warn("store renewal state", "cert", e.id, "error", err)
	}
	meta := e.snapshot().meta
	ev := Event{Type: typ, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: meta.notAfter,
		Attempt: st.Attempts, RetryAt: st.RetryAt}
	if st.LastError != "" {
		ev.Err = errors.New(st.LastError)
	}
	msg := "certificate expires soon and renewal keeps failing"
	if typ == EventExpired {
		msg = "certificate has expired"
	}
	m.log.Error(msg, "cert", e.id, "names", e.site.names, "not_after", meta.notAfter,
		"attempts", st.Attempts, "last_error", st.LastError)
	m.emit(ev)
}

// noticeLockWait bounds the wait for the notice lock.
const noticeLockWait = 30 * time.Second

// noticeLock takes the storage lock of id's expiry notice and returns
// its release. While the storage is down, or when the lock does not come
// within noticeLockWait, it goes on without it: a notice sent by two
// processes beats one sent by none. ok is false when ctx ended: the
// caller sends nothing (another process may hold the lock and be sending
// it; if not, it is due again at the next start).
func (m *Manager) noticeLock(ctx context.Context, id string) (unlock func(), ok bool) {
	if st := m.health.status(); !st.Up && !st.Checked.IsZero() {
		return func() {}, ctx.Err() == nil
	}
	lctx, cancel := context.WithTimeout(ctx, noticeLockWait)
	defer cancel()
	lease, err := m.store.Storage().Lock(lctx, certstore.NoticeLock(id))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false
		}
		m.log.Debug("expiry notice without the notice lock", "cert", id, "error", err)
		return func() {}, true
	}
	return func() {
		if err := lease.Unlock(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("unlock", "cert", id, "error", err)
		}
	}, true
}

// refresh puts in service a certificate for e that another process
// stored, or else takes up what another process stored about the
// certificate in service (or about the missing or damaged one): a failed
// attempt and its retry time (adoptFailure), a revocation, or a newer
// renewal information answer (adoptARI), so that this process does not
// ask the CA again. It reports whether it did any of these (each moves
// e's schedule).
func (m *Manager) refresh(ctx context.Context, e *entry) bool {
	c, err := m.store.LoadCert(ctx, e.id)
	if err != nil {
		if !m.certUnread(ctx, e, err) {
			return false
		}
		st, err := m.store.LoadState(ctx, e.id)
		return err == nil && e.adoptFailure(st)
	}
	if !e.isNewer(c) {
		// The same certificate: another process may have revoked it,
		// failed to renew it, or asked the CA for its renewal
		// information.
		st, err := m.store.LoadState(ctx, e.id)
		if err != nil {
			return false
		}
		revoked, failed := e.takeRevocation(st.RevokedAt), e.adoptFailure(st)
		return e.adoptARI(st) || revoked || failed
	}
	st := e.snapshot().state
	if fresh, err := m.store.LoadState(ctx, e.id); err == nil {
		st = fresh
	}
	ok, err := m.install(e, c, st)
	if err != nil {
		m.log.Error("stored certificate unusable", "cert", e.id, "error", err)
		return false
	}
	e.fromPeer()
	if ok {
		m.emit(Event{Type: EventLoaded, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: c.NotAfter})
	}
	return ok
}

// certUnread deals with err, the failure to read e's stored certificate,
// and reports whether there is no usable stored certificate (missing or
// damaged), so that the renewal state is worth reading still. A damaged
// record (certstore.ErrDamaged) stands for none, so one is obtained
// again: logged at error once, and in the status as the last error
// (noteDamaged), as at load. Any other failure is the storage's: warned
// of, and read again at the next pass.
func (m *Manager) certUnread(ctx context.Context, e *entry, err error) bool {
	damaged := errors.Is(err, certstore.ErrDamaged)
	switch {
	case certstore.IsNotExist(err):
		return true
	case ctx.Err() != nil:
		return false
	case damaged && e.cur.Load() == nil:
		if e.noteDamaged(err) {
			m.log.Error("unreadable stored certificate; it will be obtained again",
				"cert", e.id, "names", e.site.names, "error", err)
		}
	default:
		m.log.Warn("read stored certificate", "cert", e.id, "error", err)
	}
	return damaged
}

// obtainOptions modify an order.
type obtainOptions struct {
	force bool // order even if another process just stored a certificate
	// replaceRevoked: order, whatever retry time is pending, if the
	// certificate in service (as stored, checked under the lock) is
	// revoked or missing, but not if another process replaced it
	// meanwhile: Revoke's replacement.
	replaceRevoked bool
	// resume: complete an order that a process which stopped (a killed
	// `tlspilot renew --force`) left saved, if it is still saved under
	// the lock, although no renewal is due: its certificate may be
	// issued already, and status shows it renewing until it is done.
	resume   bool
	onStep   func(string) // progress, may be nil
	reported bool         // a failure is shown through onStep: see fail
}

// obtain orders a certificate for e: under the lock issue/<id>, after
// checking storage once more, so that processes sharing a storage never
// order the same certificate twice, nor sooner than a retry time that
// any of them recorded. It returns a *retryWait when such a retry time
// held it back, and a *failedAttempt when an order failed and the failure
// is recorded already, under the lock, so that the process taking the
// lock next finds it; any other error is the caller's to record (fail),
// or not if ctx ended or the storage is unreachable.
func (m *Manager) obtain(ctx context.Context, e *entry, opts obtainOptions) error {
	return m.underIssueLock(ctx, e.id, func(ctx context.Context) error {
		err := m.obtainLocked(ctx, e, opts)
		var wait *retryWait
		if err == nil || errors.As(err, &wait) || ctx.Err() != nil {
			return err
		}
		if _, ok := m.checkStorage(ctx); !ok {
			return err
		}
		return &failedAttempt{err: err, retryAt: m.fail(e, err, opts.reported)}
	})
}

// retryWait is obtain's error when a retry time recorded after a failed
// attempt, by this process or another sharing the storage, has not come:
// nothing was ordered.
type retryWait struct{ at time.Time }

func (w *retryWait) Error() string {
	return StepRetryWait + " until " + w.at.UTC().Format(time.RFC3339)
}

// failedAttempt is obtain's error when the attempt failed with err and
// was recorded (fail): retryAt is when to try again.
type failedAttempt struct {
	err     error
	retryAt time.Time
}

func (f *failedAttempt) Error() string { return f.err.Error() }
func (f *failedAttempt) Unwrap() error { return f.err }

// underIssueLock runs f under the storage lock issue/<id> with a context
// that carries the lease (a backend that fences writes rejects them once
// the lease is lost) and ends when the lease is lost.
func (m *Manager) underIssueLock(ctx context.Context, id string, f func(ctx context.Context) error) error {
	lease, err := m.store.Storage().Lock(ctx, certstore.IssueLock(id))
	if err != nil {
		return fmt.Errorf("lock %s: %w", id, err)
	}
	defer func() {
		if err := lease.Unlock(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("unlock", "cert", id, "error", err)
		}
	}()
	ctx = storage.WithLease(ctx, lease)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lease.Done():
			cancel(lease.Err())
		case <-ctx.Done():
		}
	}()
	return f(ctx)
}

// obtainLocked is obtain under the lock.
func (m *Manager) obtainLocked(ctx context.Context, e *entry, opts obtainOptions) error {
	// The question asked again under the lock is whether the certificate
	// in service, maybe one that another process stored while this one
	// waited (put in service by refresh now, or by watch before), still
	// needs replacing. Asking only whether refresh found a newer one would
	// order again when watch had already put it in service.
	m.refresh(ctx, e)
	if at := e.retryAt(); !opts.force && !opts.replaceRevoked && at.After(time.Now()) {
		// A failed attempt, maybe another process's that refresh just
		// took up, holds every process back until its retry time.
		return &retryWait{at: at}
	}
	if !opts.force && !e.needsOrder(time.Now(), jitter) && !(opts.resume && m.interrupted(ctx, e)) {
		return nil
	}
	req, renewing := m.request(ctx, e)
	rushed := renewing && e.ariRushes()
	c, flow, err := m.order(ctx, req, opts.onStep)
	if err != nil {
		return fmt.Errorf("obtain %s: %w", e.id, err)
	}
	if err := m.store.StoreCert(ctx, e.id, c); err != nil {
		return fmt.Errorf("store certificate %s: %w", e.id, err)
	}
	if err := flow.Done(ctx, e.id); err != nil {
		m.log.Warn("forget order progress", "cert", e.id, "error", err)
	}
	st := issuedState(c, time.Now())
	st.ARIRushed = rushed
	_, ierr := m.install(e, c, st)
	if ierr == nil {
		m.plan(ctx, e, true)
	}
	// Noted once the renewal state is stored too, so that the other
	// processes read the certificate with the renewal information fetched
	// with it, and do not ask the CA for it again.
	if err := m.store.NoteChange(ctx, e.id); err != nil {
		m.log.Warn("note certificate change", "cert", e.id, "error", err)
	}
	if ierr != nil {
		return ierr
	}
	typ := EventObtained
	if renewing {
		typ = EventRenewed
	}
	m.log.Info("certificate "+string(typ), "cert", e.id, "names", e.site.names, "not_after", c.NotAfter)
	m.emit(Event{Type: typ, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: c.NotAfter})
	return nil
}

// order runs one order for req with the account. An order refused for an
// account-level reason is placed once more when accountFailed made a new
// attempt possible (a new account after the CA deactivated the old one).
func (m *Manager) order(ctx context.Context, req issuance.Request, onStep func(string)) (certstore.Cert, *issuance.Flow, error) {
	for try := 0; ; try++ {
		if err := m.limiter.wait(ctx); err != nil {
			return certstore.Cert{}, nil, err
		}
		if onStep != nil && try == 0 {
			onStep(StepContacting) // the account and directory come first
		}
		acct, err := m.account(ctx)
		if err != nil {
			return certstore.Cert{}, nil, err
		}
		flow := &issuance.Flow{Client: m.client, Account: acct, Store: m.store, Log: m.log,
			Solvers: m.solvers(), OnStep: onStep}
		if mt := m.cfg.Metrics; mt != nil {
			flow.OnChallenge, flow.OnPropagation = mt.Challenge, mt.DNSPropagation
		}
		c, err := flow.Obtain(ctx, req)
		if err == nil || acmeclient.ClassOf(err) != acmeclient.BadAccount || try > 0 {
			return c, flow, err
		}
		again, aerr := m.accountFailed(ctx, acct, err)
		if !again {
			return certstore.Cert{}, nil, aerr
		}
	}
}

// solvers are the Manager's challenge solvers by challenge type.
func (m *Manager) solvers() map[string]solvers.Solver {
	s := map[string]solvers.Solver{HTTP01: m.httpSolver(), TLSALPN01: m.alpnSolver()}
	if m.dns != nil {
		s[DNS01] = m.dns
	}
	return s
}

// sweepLeftovers removes, under the issue lock, the challenge answers an
// earlier attempt at e's certificate could not remove and recorded
// (issuance.Leftovers: a DNS server down at clean-up, a failing hook), so
// that a run of `renew` or `certs --once` with nothing due still takes
// them away; what still cannot be removed is logged at WARN with where it
// is published. The daemon's next order of e does the same (Flow.Obtain).
func (m *Manager) sweepLeftovers(ctx context.Context, e *entry) {
	if left, err := issuance.Leftovers(ctx, m.store, e.id); err != nil || len(left) == 0 {
		return
	}
	_ = m.underIssueLock(ctx, e.id, func(ctx context.Context) error {
		f := &issuance.Flow{Store: m.store, Log: m.log, Solvers: m.solvers()}
		for _, c := range f.Sweep(ctx, e.id) {
			name, value := issuance.Where(c)
			m.log.Warn("challenge answer left published: remove it by hand, or it is tried again at the next run",
				"cert", e.id, "name", name, "value", value)
		}
		return nil
	})
}

// issuedState is the renewal state of a certificate just issued: the
// CA's renewal window when it sent one with the certificate (RFC 9773),
// else nothing, so that renewal information is asked for at once.
func issuedState(c certstore.Cert, now time.Time) certstore.State {
	var st certstore.State
	if ri := c.RenewalInfo; ri != nil && c.ARIID != "" {
		st.ARIFor, st.ARIStart, st.ARIEnd = c.ARIID, ri.Start, ri.End
		st.ARIPastWhenGiven = !ri.End.After(now)
		st.ARICheckAfter, st.ARICheckedAt = ariRecheck(now, ri.RetryAfter), now
	}
	return st
}

// request builds the order request for e; it names the certificate being
// replaced when the CA offers ARI.
func (m *Manager) request(ctx context.Context, e *entry) (issuance.Request, bool) {
	renewing := e.cur.Load() != nil
	meta := e.snapshot().meta
	ariID, obtained := meta.ariID, meta.obtained
	if meta.ca != m.cfg.CA {
		ariID = "" // "replaces" names a certificate of this CA only
	}
	req := issuance.Request{ID: e.id, Names: e.site.names, KeyType: e.keyType, Challenge: e.challenge,
		Profile: e.profile, After: obtained}
	if renewing && ariID != "" {
		if dir, err := m.client.Directory(ctx); err == nil && dir.RenewalInfo {
			req.Replaces = ariID
		}
	}
	return req, renewing
}

// fail records a failed attempt, reports it, and returns when to retry,
// counting on from the attempts stored by any process sharing the
// storage (refresh takes them up under the issue lock, before ordering):
// exponential backoff with jitter for every class of failure, never
// before the CA's Retry-After. Only the first retry after a rejected
// nonce is quick (RFC 8555 §6.5 asks for a retry with a fresh nonce);
// the next ones back off like any other failure, so that no failure can
// make a fixed-interval loop. The log has the failure at error level,
// or at info when reported says the caller shows it already (Renew's
// Progress).
func (m *Manager) fail(e *entry, err error, reported bool) time.Time {
	now := time.Now()
	class := failureClass(err)
	prob := problemOf(err)
	st, notAfter := e.failed(now, err, prob, func(attempts int) time.Time {
		return m.retryAt(now, attempts, class, acmeclient.RetryAfterOf(err))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := m.store.StoreState(ctx, e.id, st); serr != nil {
		m.log.Warn("store renewal state", "cert", e.id, "error", serr)
	} else if st.Attempts == 1 {
		// The first failure is noted so that the other processes sharing
		// the storage take it up (refresh) now, not at their next pass:
		// their status shows the certificate failing. Later ones are not:
		// during a CA outage every certificate would be noted at each
		// attempt, and a reader that misses more than MaxRecent changes
		// reads every certificate again. Peers take them up under the
		// issue lock before ordering anyway.
		if nerr := m.store.NoteChange(ctx, e.id); nerr != nil {
			m.log.Warn("note failed attempt", "cert", e.id, "error", nerr)
		}
	}
	level := slog.LevelError
	if reported {
		level = slog.LevelInfo
	}
	m.log.Log(ctx, level, "certificate attempt failed", "cert", e.id, "names", e.site.names, "attempt", st.Attempts,
		"class", class.String(), "retry_in", st.RetryAt.Sub(now).Round(time.Second), "error", err)
	// Timed at the failure, which RetryAt counts from, not after the
	// store above.
	m.emit(Event{Type: EventFailed, Time: now, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: notAfter,
		Attempt: st.Attempts, RetryAt: st.RetryAt, Err: err, Problem: prob})
	return st.RetryAt
}

// failureClass is how a failed attempt is retried: as the CA's answer
// classes it (acmeclient.ClassOf), except that a DNS provider refusing
// the update for a configuration mistake (dns01.ErrConfig: unknown TSIG
// key, bad signature, zone not updatable) is a BadOrder: no order can
// succeed until the configuration is fixed, so it waits orderRetryFloor.
func failureClass(err error) acmeclient.Class {
	if errors.Is(err, dns01.ErrConfig) {
		return acmeclient.BadOrder
	}
	return acmeclient.ClassOf(err)
}

// quickRetry is the delay before the one quick retry after a rejected
// nonce (up to twice this with jitter).
const quickRetry = time.Second

// orderRetryFloor is the least delay before a new order after one that
// could not succeed (acmeclient.BadOrder: a failed validation above all),
// or RetryMax if that is shorter. Let's Encrypt allows 5 failed
// validations per name and account per hour, and the backoff doubling
// from one minute alone would make 6 in the first half hour; with this
// floor there are at most 5 in an hour.
const orderRetryFloor = 12 * time.Minute

// retryAt is when to try again after the attempts-th consecutive failure
// at now, of class, with the CA's Retry-After (zero if none): the backoff,
// with one quick retry after a first rejected nonce and orderRetryFloor
// after an order that could not succeed.
func (m *Manager) retryAt(now time.Time, attempts int, class acmeclient.Class, retryAfter time.Time) time.Time {
	if class == acmeclient.BadNonce && attempts == 1 {
		return now.Add(quickRetry + time.Duration(jitter()*float64(quickRetry)))
	}
	next := m.backoff.Next(now, attempts, retryAfter, jitter)
	if class == acmeclient.BadOrder {
		floor := now.Add(min(orderRetryFloor, cmp.Or(m.backoff.Max, renewal.DefaultBackoffMax)))
		if next.Before(floor) {
			next = floor
		}
	}
	return next
}

// Bounds of the interval between renewal information requests for one
// certificate (RFC 9773 §4.3: the CA's Retry-After, clamped to reasonable
// limits). Without a Retry-After, the CA is asked again after a day.
const (
	ariMinRecheck = time.Minute
	ariMaxRecheck = 24 * time.Hour
	// ariErrRecheck is the pause after a failed request without a
	// Retry-After.
	ariErrRecheck = time.Hour
	// ariStartPace spaces the renewal information requests made after a
	// start (one per certificate), so that many certificates do not ask
	// the CA all at once: 20 requests a second at most.
	ariStartPace = 50 * time.Millisecond
	// ariPeerGrace is how long after an answer's ARICheckAfter a process
	// that took the answer up from the storage (stored by another process
	// sharing it) waits before asking itself: time for the process that
	// asked to ask again and store the new answer, which this one then
	// takes up instead of asking too.
	ariPeerGrace = time.Minute
)

// ariRecheck returns when to ask for renewal information again after an
// answer that carried retryAfter (zero if none).
func ariRecheck(now, retryAfter time.Time) time.Time {
	if retryAfter.IsZero() {
		return now.Add(ariMaxRecheck)
	}
	return now.Add(min(max(retryAfter.Sub(now), ariMinRecheck), ariMaxRecheck))
}

// checkARI refreshes e's renewal window from the CA when it is due: soon
// after issuance, once after every start, then as the CA's Retry-After
// says. An answer (or failure) is stored at once and noted as a change,
// so that the other processes sharing the storage take it up (refresh)
// instead of asking the CA themselves.
func (m *Manager) checkARI(ctx context.Context, e *entry) {
	ariID, due := e.ariDue(time.Now())
	cur := e.cur.Load()
	if !due || cur == nil {
		return
	}
	leaf, err := x509.ParseCertificate(cur.Certificate[0])
	if err != nil {
		return
	}
	ri, err := m.client.RenewalInfo(ctx, leaf)
	if ctx.Err() != nil {
		return
	}
	recorded, err := e.ariAnswered(time.Now(), ariID, ri, err)
	if err != nil {
		m.log.Warn("renewal information", "cert", e.id, "error", err)
	}
	if recorded {
		m.shareARI(ctx, e)
	}
}

// shareARI stores e's renewal state after an answer about renewal
// information and notes the change, which wakes the other processes
// sharing the storage (storage.Watcher) to take the answer up. Two
// processes that store answers at once each keep their own, the newer
// in memory (adoptARI): whichever is stored last, none loops.
func (m *Manager) shareARI(ctx context.Context, e *entry) {
	_, st, _ := e.plan(time.Now(), true, jitter)
	if err := m.store.StoreState(ctx, e.id, st); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("store renewal state", "cert", e.id, "error", err)
		}
		e.unsaved()
		return
	}
	if err := m.store.NoteChange(ctx, e.id); err != nil && ctx.Err() == nil {
		m.log.Warn("note renewal information", "cert", e.id, "error", err)
	}
}
