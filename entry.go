package tlspilot

import (
	"crypto/tls"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// entry is one managed certificate: what it is (fixed when it is made),
// the certificate in service (read without locks on the handshake path),
// and what the Manager knows about its renewal, guarded by the entry's
// own lock. Every method takes that lock itself, so callers never hold
// it; a caller that also needs Manager.mu takes Manager.mu first.
type entry struct {
	id        string
	site      *site
	keyType   KeyType
	challenge string
	profile   string
	ca        string                          // the configured CA's directory URL; "" when unknown (status)
	cur       atomic.Pointer[tls.Certificate] // the certificate in service, nil until one exists
	temp      atomic.Pointer[tls.Certificate] // self-signed stand-in, made on first use

	mu      sync.Mutex
	meta    certMeta
	state   certstore.State
	next    time.Time // when the scheduler next looks at it
	running bool      // a maintenance pass is under way
	dirty   bool      // state changed since it was last saved
	// ariAfterStart is when this process asks for renewal information
	// for the first time since it started; zero once it has.
	ariAfterStart time.Time
	// ariFromPeer is set while the renewal information answer in state
	// is one another process asked for and stored (adoptARI, refresh):
	// this process then asks only ariPeerGrace after the answer's
	// ARICheckAfter, so that the process that asked last asks first and
	// the others take up its new answer instead of asking too.
	ariFromPeer bool
	// damaged is the last error logged about an unusable stored
	// certificate (noteDamaged), so that it is logged once.
	damaged string
	// noLeaf is the certificate in service whose leaf did not parse
	// (withLeaf), so that it is not parsed again at each handshake.
	noLeaf atomic.Pointer[tls.Certificate]
}

// certMeta is what the Manager keeps about the certificate in service.
type certMeta struct {
	notBefore, notAfter time.Time
	issuer, ariID       string
	serial              string
	ca                  string
	obtained            time.Time
}

// snapshot is a consistent copy of an entry's mutable fields.
type snapshot struct {
	meta    certMeta
	state   certstore.State
	next    time.Time
	running bool
}

func (e *entry) snapshot() snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return snapshot{meta: e.meta, state: e.state, next: e.next, running: e.running}
}

// install puts tc (the in-memory form of c) in service with renewal state
// st, unless a certificate at least as new is in service already; st is
// taken either way, as this process's own (see fromPeer). It reports
// whether tc was installed.
func (e *entry) install(c certstore.Cert, tc *tls.Certificate, st certstore.State) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state, e.ariFromPeer = st, false
	if e.cur.Load() != nil && !c.Obtained.After(e.meta.obtained) {
		return false
	}
	e.damaged = ""
	e.meta = certMeta{notBefore: c.NotBefore, notAfter: c.NotAfter, issuer: c.Issuer, ariID: c.ARIID,
		serial: serialOf(tc), ca: c.CA, obtained: c.Obtained}
	e.cur.Store(tc)
	return true
}

// setState replaces the renewal state (read from storage).
func (e *entry) setState(st certstore.State) {
	e.mu.Lock()
	e.state = st
	e.mu.Unlock()
}

// takeRevocation records that the certificate in service was revoked
// at, as another process stored it; it reports whether that is news.
func (e *entry) takeRevocation(at time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if at.IsZero() || !e.state.RevokedAt.IsZero() || e.cur.Load() == nil {
		return false
	}
	e.state.RevokedAt = at
	return true
}

// isNewer reports whether c is newer than the certificate in service.
func (e *entry) isNewer(c certstore.Cert) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur.Load() == nil || c.Obtained.After(e.meta.obtained)
}

// start marks a maintenance pass as under way; it reports false if one
// already is.
func (e *entry) start() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return false
	}
	e.running = true
	return true
}

// done ends a maintenance pass and records when the next one is due.
func (e *entry) done(next time.Time) {
	e.mu.Lock()
	e.running, e.next = false, next
	e.mu.Unlock()
}

// setNext records when the scheduler next looks at e.
func (e *entry) setNext(at time.Time) {
	e.mu.Lock()
	e.next = at
	e.mu.Unlock()
}

// hasARI reports whether the certificate in service has an ARI
// identifier, so that renewal information can be asked for it.
func (e *entry) hasARI() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.meta.ariID != ""
}

// askARIAt makes the first renewal information check of this process due
// at at.
func (e *entry) askARIAt(at time.Time) {
	e.mu.Lock()
	e.ariAfterStart = at
	e.mu.Unlock()
}

// plan returns when e next needs attention, drawing its renewal time if
// needed, with the state to save if it changed since it was last saved
// (or force is set).
func (e *entry) plan(now time.Time, force bool, rnd renewal.Rand) (due time.Time, st certstore.State, save bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.state
	due = e.dueLocked(now, rnd)
	save = force || e.dirty || e.state != before
	e.dirty = false
	return due, e.state, save
}

// retryAt is when a failed certificate is tried again; zero if none is
// pending.
func (e *entry) retryAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state.RetryAt
}

// unsaved marks the state as not saved, after a failed write.
func (e *entry) unsaved() {
	e.mu.Lock()
	e.dirty = true
	e.mu.Unlock()
}

// dueLocked returns when e next needs attention: now if it has no
// certificate, else its renewal time or its next renewal information
// check, whichever comes first, but never before a pending retry time;
// and at the expiry of the certificate in service, to send the expired
// notice on time, even while a retry is pending (the pass made then
// sends it and, the retry not being due, orders nothing).
func (e *entry) dueLocked(now time.Time, rnd renewal.Rand) time.Time {
	if !e.state.RetryAt.IsZero() && e.state.RetryAt.After(now) {
		if e.expiredNoticeDueLocked() && e.meta.notAfter.Before(e.state.RetryAt) {
			return e.meta.notAfter
		}
		return e.state.RetryAt
	}
	if e.cur.Load() == nil || !e.state.RevokedAt.IsZero() {
		return now // none yet, or the one in service was revoked (a new one resets the state)
	}
	if e.ca != "" && e.meta.ca != "" && e.meta.ca != e.ca {
		// The config names another CA (staging to production, say): the
		// certificate in service is replaced now, and served until then.
		return now
	}
	due := e.renewAtLocked(rnd)
	if c, ok := e.ariDueLocked(now); ok && c.Before(due) {
		due = c
	}
	if e.expiredNoticeDueLocked() && e.meta.notAfter.Before(due) {
		due = e.meta.notAfter // to send the expired notice on time
	}
	return due
}

// expiredNoticeDueLocked reports whether the certificate in service has
// not had its expired notice yet.
func (e *entry) expiredNoticeDueLocked() bool {
	return e.cur.Load() != nil && !e.meta.notAfter.IsZero() && !e.state.ExpiredFor.Equal(e.meta.notAfter)
}

// needsOrder reports whether e needs a new certificate at now: none in
// service, one from another CA than the configured one, or one whose
// renewal time has come. Unlike dueLocked it leaves out renewal
// information checks, expiry notices and retry times: it is the question
// asked again under the issue lock, before ordering.
func (e *entry) needsOrder(now time.Time, rnd renewal.Rand) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur.Load() == nil || !e.state.RevokedAt.IsZero() || e.ca != "" && e.meta.ca != "" && e.meta.ca != e.ca {
		return true
	}
	return !e.renewAtLocked(rnd).After(now)
}

// expiryDue says which expiry notice of e is due at now, if any,
// without recording it: "expired" once per certificate in service once
// it has expired, else "expiring" at most every expiringEvery while
// renewal keeps failing inside the warning window.
func (e *entry) expiryDue(now time.Time, warn WarnWindow) (EventType, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.expiryDueLocked(now, warn)
}

func (e *entry) expiryDueLocked(now time.Time, warn WarnWindow) (EventType, bool) {
	if e.cur.Load() == nil || e.meta.notAfter.IsZero() {
		return "", false
	}
	switch {
	case !now.Before(e.meta.notAfter):
		return EventExpired, !e.state.ExpiredFor.Equal(e.meta.notAfter)
	case e.state.Attempts > 0 && !now.Before(warn.Start(e.meta.notBefore, e.meta.notAfter)):
		return EventExpiring, now.Sub(e.state.WarnedAt) >= expiringEvery
	}
	return "", false
}

// expiryNotice records the expiry notice due at now (expiryDue) as sent
// and returns its type with the state to store; ok is false when none is
// due.
func (e *entry) expiryNotice(now time.Time, warn WarnWindow) (typ EventType, st certstore.State, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	typ, ok = e.expiryDueLocked(now, warn)
	switch {
	case !ok:
		return "", e.state, false
	case typ == EventExpired:
		e.state.ExpiredFor = e.meta.notAfter
	default:
		e.state.WarnedAt = now
	}
	return typ, e.state, true
}

// adoptNotices takes up the expiry notices another process sharing the
// storage recorded in st as sent: an "expiring" notice sent later than
// e's last, and an "expired" one for the certificate in service.
func (e *entry) adoptNotices(st certstore.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.WarnedAt.After(e.state.WarnedAt) {
		e.state.WarnedAt = st.WarnedAt
	}
	if !st.ExpiredFor.IsZero() && st.ExpiredFor.Equal(e.meta.notAfter) {
		e.state.ExpiredFor = st.ExpiredFor
	}
}

// expiringEvery is how often the "expiring" notice is repeated while
// renewal keeps failing.
const expiringEvery = 24 * time.Hour

// markPending records when e started waiting for its first certificate,
// and reports whether that changed the state.
func (e *entry) markPending(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur.Load() != nil || !e.state.PendingSince.IsZero() {
		return false
	}
	e.state.PendingSince = now
	return true
}

// ariDueLocked returns when the CA should next be asked for e's renewal
// information (RFC 9773): at once for a certificate it was never asked
// about, once after every start, and otherwise when the last answer's
// Retry-After says. ok is false for a certificate without an ARI
// identifier.
func (e *entry) ariDueLocked(now time.Time) (at time.Time, ok bool) {
	if e.meta.ariID == "" {
		return time.Time{}, false
	}
	at = e.state.ARICheckAfter
	if e.state.ARIFor != e.meta.ariID {
		at = now
	} else if e.ariFromPeer {
		at = at.Add(ariPeerGrace)
	}
	if !e.ariAfterStart.IsZero() && e.ariAfterStart.Before(at) {
		at = e.ariAfterStart
	}
	return at, true
}

// renewAtLocked returns when e's certificate should be renewed: inside the
// CA's ARI window when it sent one for this certificate, otherwise by the
// lifetime rule. The random choice is drawn once per certificate and
// window and kept in the state (which plan saves), so neither repeated
// checks nor restarts make it drift.
func (e *entry) renewAtLocked(rnd renewal.Rand) time.Time {
	var w *renewal.Window
	if e.state.ARIFor == e.meta.ariID && e.meta.ariID != "" && e.state.ARIEnd.After(e.state.ARIStart) {
		w = &renewal.Window{Start: e.state.ARIStart, End: e.state.ARIEnd}
	}
	if key := e.windowKeyLocked(w); e.state.RenewAt.IsZero() || e.state.RenewFor != key {
		at := renewal.Due(e.meta.notBefore, e.meta.notAfter, w, rnd)
		lifetime := e.meta.notAfter.Sub(e.meta.notBefore)
		// Whatever the CA suggests, never wait until less than a tenth of
		// the lifetime is left: there must be time to retry.
		if latest := e.meta.notAfter.Add(-lifetime / 10); at.After(latest) {
			at = latest
		}
		if w != nil && e.state.ARIRushed {
			if floor := e.ariFloorLocked(lifetime); at.Before(floor) {
				at = floor
			}
		}
		e.state.RenewAt, e.state.RenewFor = at, key
	}
	return e.state.RenewAt
}

// ariFloorMax bounds ariFloorLocked's wait.
const ariFloorMax = 24 * time.Hour

// ariFloorLocked is the soonest the CA's renewal information may have
// e's certificate renewed when that certificate itself replaced one at
// once because the CA gave its window already past (State.ARIRushed): a tenth of its
// lifetime, at most ariFloorMax, after it was obtained (or became valid,
// when not obtained here). RFC 9773 §4.2 has a client renew at once when
// the suggested window has passed, and a first such renewal is made at
// once; a CA that says so of every certificate, the replacement
// included, would otherwise have each replacement renewed as soon as it
// is obtained, in a loop. A revoked certificate does not wait for this
// (needsOrder).
func (e *entry) ariFloorLocked(lifetime time.Duration) time.Time {
	start := e.meta.obtained
	if start.IsZero() {
		start = e.meta.notBefore
	}
	return start.Add(min(lifetime/10, ariFloorMax))
}

// windowKeyLocked identifies the certificate and window a renewal time
// was drawn for.
func (e *entry) windowKeyLocked(w *renewal.Window) string {
	k := e.meta.ariID + "|" + e.meta.notAfter.UTC().Format(time.RFC3339)
	if w != nil {
		k += "|" + w.Start.UTC().Format(time.RFC3339) + "|" + w.End.UTC().Format(time.RFC3339)
	}
	return k
}

// ariRushes reports whether the CA gave the certificate in service a
// renewal window that had already ended (State.ARIPastWhenGiven): a
// renewal ordered now is one RFC 9773 §4.2 asks for at once, not one
// that is late.
func (e *entry) ariRushes() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur.Load() != nil && e.meta.ariID != "" && e.state.ARIFor == e.meta.ariID &&
		!e.state.ARIEnd.IsZero() && e.state.ARIPastWhenGiven
}

// ariDue reports whether renewal information should be asked for now,
// with the ARI identifier it will be for.
func (e *entry) ariDue(now time.Time) (ariID string, due bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.ariDueLocked(now)
	return e.meta.ariID, ok && !at.After(now) && e.cur.Load() != nil
}

// ariAnswered records the CA's answer (or failure) about renewal
// information for the certificate with ARI identifier ariID, unless that
// certificate was replaced meanwhile; recorded reports whether it was.
// err is the request's error, for the caller to report.
func (e *entry) ariAnswered(now time.Time, ariID string, ri acmeclient.RenewalInfo, err error) (recorded bool, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.meta.ariID != ariID {
		return false, nil
	}
	e.state.ARIFor, e.state.ARICheckedAt = ariID, now
	e.ariAfterStart, e.ariFromPeer = time.Time{}, false
	e.dirty = true
	switch {
	case err == nil:
		if !ri.Start.Equal(e.state.ARIStart) || !ri.End.Equal(e.state.ARIEnd) {
			e.state.ARIPastWhenGiven = !ri.End.After(now)
		}
		e.state.ARIStart, e.state.ARIEnd = ri.Start, ri.End
		e.state.ARICheckAfter = ariRecheck(now, ri.RetryAfter)
	case errors.Is(err, acmeclient.ErrNoARI):
		e.state.ARICheckAfter = now.Add(ariMaxRecheck)
	default:
		e.state.ARICheckAfter = now.Add(ariErrRecheck)
		if ra := acmeclient.RetryAfterOf(err); !ra.IsZero() {
			e.state.ARICheckAfter = ariRecheck(now, ra)
		}
		return true, err
	}
	return true, nil
}

// adoptARI takes up the renewal information answer that another process
// sharing the storage stored in st for the certificate in service, when
// it is newer than the one e holds (a later ARICheckedAt, or e holds none
// for this certificate), with the renewal time drawn for it; the renewal
// rules applied to it are unchanged. Such an answer was stored after this
// process loaded the certificate, so it also stands for the check after
// a start. It reports whether it took the answer up. An older stored
// answer never replaces a newer one held in memory.
func (e *entry) adoptARI(st certstore.State) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur.Load() == nil || e.meta.ariID == "" || st.ARIFor != e.meta.ariID {
		return false
	}
	if e.state.ARIFor == e.meta.ariID && !st.ARICheckedAt.After(e.state.ARICheckedAt) {
		return false
	}
	e.state.ARIFor, e.state.ARIStart, e.state.ARIEnd = st.ARIFor, st.ARIStart, st.ARIEnd
	e.state.ARICheckAfter, e.state.ARICheckedAt = st.ARICheckAfter, st.ARICheckedAt
	e.state.ARIPastWhenGiven = st.ARIPastWhenGiven
	if st.RenewFor != "" {
		e.state.RenewAt, e.state.RenewFor = st.RenewAt, st.RenewFor
	}
	e.ariAfterStart, e.ariFromPeer = time.Time{}, true
	return true
}

// fromPeer records that e's renewal state was just read from the storage
// with a certificate another process stored, so that a renewal
// information answer in it is another process's.
func (e *entry) fromPeer() {
	e.mu.Lock()
	e.ariFromPeer = true
	e.mu.Unlock()
}

// failed records a failed attempt at now and returns the state to save,
// with the retry time retryAt computed from the attempt count.
func (e *entry) failed(now time.Time, err error, prob *Problem, retryAt func(attempts int) time.Time) (certstore.State, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.Attempts++
	e.state.LastError = err.Error()
	e.state.LastProblem = ""
	if prob != nil {
		e.state.LastProblem = prob.Type
	}
	e.state.LastAttempt = now
	e.state.RetryAt = retryAt(e.state.Attempts)
	return e.state, e.meta.notAfter
}

// adoptFailure takes up the failed attempt recorded in st, the stored
// renewal state, unless this process's last one is later (its record was
// not stored, or another process's older state is): its attempt count,
// error and retry time. So a retry time set by any process sharing the
// storage holds back every process (none orders before it), and the next
// failure, wherever it happens, counts on from the stored count. It
// reports whether that changed e's state. A success resets the state with
// the new certificate (install), never through here; a failure recorded
// before the certificate in service was obtained is stale (left by a
// process that stopped between storing a certificate and its state).
func (e *entry) adoptFailure(st certstore.State) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.Attempts == 0 || st.LastAttempt.Before(e.state.LastAttempt) ||
		e.cur.Load() != nil && !st.LastAttempt.After(e.meta.obtained) ||
		st.Attempts == e.state.Attempts && st.LastAttempt.Equal(e.state.LastAttempt) && st.RetryAt.Equal(e.state.RetryAt) {
		return false
	}
	e.state.Attempts, e.state.LastError, e.state.LastProblem = st.Attempts, st.LastError, st.LastProblem
	e.state.LastAttempt, e.state.RetryAt = st.LastAttempt, st.RetryAt
	return true
}

// noteDamaged records that the stored certificate could not be used
// (err) and is being obtained again: as the last error, unless a failed
// attempt was recorded since (that error says more). It reports whether
// err is news, so that the damage is logged once, not at every pass.
func (e *entry) noteDamaged(err error) bool {
	msg := "stored certificate unreadable (damaged), obtaining it again: " + err.Error()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state.Attempts == 0 && e.state.LastError != msg {
		e.state.LastError, e.dirty = msg, true
	}
	news := e.damaged != msg
	e.damaged = msg
	return news
}

// serialOf returns the serial number of tc's leaf in hex (lower case, as
// openssl prints it without colons), or "" if it cannot be read. It reads
// only the start of the DER (RFC 5280 §4.1: the serial number follows the
// optional version), so loading many certificates does not parse each.
func serialOf(tc *tls.Certificate) string {
	if tc == nil || len(tc.Certificate) == 0 {
		return ""
	}
	in := cryptobyte.String(tc.Certificate[0])
	var cert, tbs cryptobyte.String
	var serial []byte
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1Bytes(&serial, cbasn1.INTEGER) {
		return ""
	}
	return new(big.Int).SetBytes(serial).Text(16)
}
