// Package stapler staples OCSP responses (RFC 6960, carried in the TLS
// handshake as in RFC 6066 §8) to the server's own certificates.
//
// The handshake path never waits: Staple returns the certificate with a
// fresh, verified, "good" response attached when one is at hand, and the
// certificate as it is otherwise. Fetching, verifying, caching in storage
// and refreshing happen in a goroutine per certificate, started the first
// time the certificate is seen (Prepare or Staple), and shared by every
// *tls.Certificate value holding that certificate. A certificate whose
// leaf names no OCSP responder (Let's Encrypt's since 2025, Pebble's) is
// left alone without a word.
package stapler

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Defaults of Options.
const (
	// DefaultRetryMin is the first wait after a failed fetch; it doubles
	// after each further failure up to DefaultRetryMax.
	DefaultRetryMin = time.Minute
	// DefaultRetryMax bounds the wait between failed fetches.
	DefaultRetryMax = time.Hour
	// DefaultIdle is how long a certificate may go unused in handshakes
	// before its goroutine stops (a renewed certificate's predecessor).
	DefaultIdle = 7 * 24 * time.Hour
)

// Options configures a Stapler.
type Options struct {
	// Cache fetches responses and keeps them in memory and storage, so a
	// restart staples at once from storage; required.
	Cache *ocspclient.Cache
	// Logger receives a warning for each failed fetch (saying what was
	// wrong, see ocspclient.Problem), an info line for the first staple
	// obtained after failed fetches, and an error for a revoked
	// certificate; every line names the certificate (keys serial and
	// names). Nil discards.
	Logger *slog.Logger
	// OnRevoked, if set, is called once when the responder reports a
	// certificate revoked (with when it was revoked), from the
	// certificate's goroutine: serve renews a managed certificate at once
	// (tlspilot.Manager.NoteRevoked).
	OnRevoked func(ctx context.Context, leaf *x509.Certificate, at time.Time)
	// RetryMin and RetryMax bound the backoff after failed fetches; 0
	// means DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Idle is how long an unused certificate is kept up (its schedule,
	// backoff and staple; the *tls.Certificate values carrying it are let
	// go within two hours unused); 0 means DefaultIdle.
	Idle time.Duration
}

// Stapler attaches OCSP staples to certificates. Its methods are safe for
// concurrent use.
//
// A certificate is known by its content (certKey), not by the
// *tls.Certificate value carrying it: the values that hold one
// certificate (sites sharing a SAN or wildcard certificate's files, each
// loading its own copy; the value of a reload of unchanged files) share
// one item, so one fetch schedule, one backoff and one response, and
// neither handshakes alternating between them nor a reload start it
// afresh. A new certificate (a renewal) gets an item of its own.
//
// A value is held (as a holder: the value, with its private key and
// chain, and its stapled copy) only while handshakes use it: a value no
// handshake used for holderIdle is let go at the next sweep, at most two
// hours after its last use, so the values a reload replaced are not kept
// for Options.Idle. Its item stays for Options.Idle.
type Stapler struct {
	ctx    context.Context
	opts   Options
	log    *slog.Logger
	values sync.Map   // *tls.Certificate → *holder
	certs  sync.Map   // certKey → *item
	mu     sync.Mutex // serializes the making of items
}

// New returns a Stapler whose goroutines run until ctx ends. It fails if
// opts.Cache is nil.
func New(ctx context.Context, opts Options) (*Stapler, error) {
	if opts.Cache == nil {
		return nil, errors.New("stapler: no ocsp cache")
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.Idle <= 0 {
		opts.Idle = DefaultIdle
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stapler{ctx: ctx, opts: opts, log: log}
	go s.sweep()
	return s, nil
}

// sweepEvery is the period of sweep.
const sweepEvery = time.Hour

// holderIdle is how long a value may go unused in handshakes before a
// sweep lets its holder go. One sweep period: a value a reload replaced
// is gone within two, and making the holder of a value used again costs
// one SHA-256 (keyOf) and one copy at its next staple, since its item,
// with its schedule, backoff and staple, stays for Options.Idle.
//
// Holding values weakly (weak.Pointer) would let them go as soon as
// serve drops them, but the map's key would have to be the weak pointer,
// made with weak.Make on every handshake (a runtime lock on the value's
// memory span), and when a value went would depend on the collector;
// an idle limit keeps the handshake path a plain map lookup and the
// release at a known time.
const holderIdle = sweepEvery

// sweep lets go, every sweepEvery until ctx ends, of what handshakes no
// longer use, so replaced values and certificates are not kept alive:
// the values unused for holderIdle (and those whose item is gone), and
// the items unused for Options.Idle with nothing to staple or an expired
// leaf (the others forget themselves, see maintain).
func (s *Stapler) sweep() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.sweepAt(now)
		}
	}
}

// sweepAt is one round of sweep.
func (s *Stapler) sweepAt(now time.Time) {
	s.values.Range(func(k, v any) bool {
		if h := v.(*holder); h.it.gone.Load() || h.idle(now) {
			s.values.CompareAndDelete(k, v)
		}
		return true
	})
	s.certs.Range(func(k, v any) bool {
		if it := v.(*item); (it.leaf == nil || now.After(it.leaf.NotAfter)) && s.idle(&it.lastUsed, now) {
			s.forget(it)
		}
		return true
	})
}

// certKey identifies a certificate by content: the SHA-256 of its leaf's
// DER and of the name and public key (RawSubject and
// RawSubjectPublicKeyInfo) of the certificate after it in the chain, the
// issuer the staple is verified against. These are the parts of the OCSP
// CertID (ocspclient.IDOf), so chains that differ only in which copy of
// an intermediate they carry (the intermediate or its cross-signed copy:
// same name and key) share one item, one fetch and one Status entry,
// and either copy verifies the answer; a different issuer (another name
// or another key) never shares an item. A certificate of the issuer's
// name and key that does not verify the leaf shares the key too (see
// itemOf).
type certKey [sha256.Size]byte

// keyOf returns tc's certKey. It reads the issuer's name and key out of
// the DER without parsing the certificate; a second certificate it
// cannot read is hashed whole (it makes an item with nothing to staple).
func keyOf(tc *tls.Certificate) certKey {
	h := sha256.New()
	if len(tc.Certificate) > 0 {
		writeField(h, tc.Certificate[0])
	}
	if len(tc.Certificate) > 1 {
		if subject, spki, ok := nameAndKey(tc.Certificate[1]); ok {
			_, _ = h.Write([]byte{1})
			writeField(h, subject)
			writeField(h, spki)
		} else {
			_, _ = h.Write([]byte{2})
			writeField(h, tc.Certificate[1])
		}
	}
	var k certKey
	h.Sum(k[:0])
	return k
}

// nameAndKey returns the subject and the subjectPublicKeyInfo of the
// certificate der, as encoded (x509.Certificate's RawSubject and
// RawSubjectPublicKeyInfo), reading only the start of the
// TBSCertificate (RFC 5280 §4.1).
func nameAndKey(der []byte) (subject, spki []byte, ok bool) {
	in := cryptobyte.String(der)
	var cert, tbs, subj, key cryptobyte.String
	ok = in.ReadASN1(&cert, cbasn1.SEQUENCE) && cert.ReadASN1(&tbs, cbasn1.SEQUENCE) &&
		tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) &&
		tbs.SkipASN1(cbasn1.INTEGER) && // serialNumber
		tbs.SkipASN1(cbasn1.SEQUENCE) && // signature
		tbs.SkipASN1(cbasn1.SEQUENCE) && // issuer
		tbs.SkipASN1(cbasn1.SEQUENCE) && // validity
		tbs.ReadASN1Element(&subj, cbasn1.SEQUENCE) && tbs.ReadASN1Element(&key, cbasn1.SEQUENCE)
	return subj, key, ok
}

// writeField writes b with its length in front, so that two different
// sequences of fields never hash the same bytes.
func writeField(h hash.Hash, b []byte) {
	n := len(b)
	_, _ = h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	_, _ = h.Write(b)
}

// item is one certificate the Stapler has seen, shared by every value
// holding it.
type item struct {
	key         certKey
	leaf        *x509.Certificate // nil: nothing to staple (no responder, no issuer)
	issuer      *x509.Certificate
	responder   string
	names       []string                            // the leaf's DNS names, else its common name
	lacksIssuer bool                                // leaf nil: a responder, but no issuer in the chain
	gone        atomic.Bool                         // forgotten (idle, stopped): its holders take up a new item
	staple      atomic.Pointer[ocspclient.Response] // the good response to staple, nil for none
	lastUsed    atomic.Int64                        // unix seconds of the last handshake with any holder
	next        atomic.Int64                        // unix nanoseconds of the next fetch
	failures    atomic.Int64                        // in a row, for the backoff
	failTotal   atomic.Int64                        // since the item was made, for the metric
	last        atomic.Pointer[ocspclient.Response] // the last response taken, whatever its status
	revoked     atomic.Bool
}

// holder is one certificate value the Stapler has seen, and the copy of
// it that carries its item's staple. It is let go once unused for
// holderIdle (see sweepAt).
type holder struct {
	src      *tls.Certificate
	it       *item
	lastUsed atomic.Int64 // unix seconds of the last handshake
	stapled  atomic.Pointer[stapled]
}

// stapled is a response and the certificate copy that carries it.
type stapled struct {
	resp *ocspclient.Response
	tc   *tls.Certificate
}

// Staple returns tc with a fresh, verified "good" OCSP response in
// OCSPStaple when one is at hand, as a copy (tc itself is never
// modified); otherwise tc. It never does I/O: the first call for a
// certificate starts its goroutine, as Prepare does.
func (s *Stapler) Staple(tc *tls.Certificate) *tls.Certificate {
	if tc == nil {
		return nil
	}
	h := s.holder(tc)
	now := time.Now()
	h.touch(now)
	r := h.it.staple.Load()
	if r == nil || !r.Fresh(now) {
		return tc
	}
	if st := h.stapled.Load(); st != nil && st.resp == r {
		return st.tc
	}
	cp := *h.src
	cp.OCSPStaple = r.Raw
	h.stapled.Store(&stapled{resp: r, tc: &cp})
	return &cp
}

// Prepare starts keeping a staple for tc, so that it is ready before
// the first handshake (a certificate just loaded from files).
func (s *Stapler) Prepare(tc *tls.Certificate) {
	if tc != nil {
		s.holder(tc).touch(time.Now())
	}
}

// touch records a handshake at now, on the value and its certificate.
func (h *holder) touch(now time.Time) {
	sec := now.Unix()
	if h.lastUsed.Load() != sec {
		h.lastUsed.Store(sec)
	}
	if h.it.lastUsed.Load() != sec {
		h.it.lastUsed.Store(sec)
	}
}

// idle reports whether no handshake used the value for holderIdle before
// now.
func (h *holder) idle(now time.Time) bool {
	return now.Sub(time.Unix(h.lastUsed.Load(), 0)) > holderIdle
}

// holder returns tc's holder, making it on first sight (or once its item
// is gone) with the item of tc's certificate.
func (s *Stapler) holder(tc *tls.Certificate) *holder {
	if v, ok := s.values.Load(tc); ok {
		if h := v.(*holder); !h.it.gone.Load() {
			return h
		}
	}
	h := &holder{src: tc, it: s.itemOf(tc)}
	h.lastUsed.Store(time.Now().Unix())
	s.values.Store(tc, h)
	return h
}

// itemOf returns the item of tc's certificate, making it (and starting
// its goroutine) if there is none, or if the item there lacks the issuer
// and tc's chain has it: a certificate of the issuer's name and key that
// does not verify the leaf (not marked as a CA, say) shares the key of
// one that does, and must not keep it from its staple.
func (s *Stapler) itemOf(tc *tls.Certificate) *item {
	key := keyOf(tc)
	if it := s.live(key); it != nil && !it.lacksIssuer {
		return it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.live(key) // made meanwhile?
	if it != nil && (!it.lacksIssuer || !hasIssuer(tc)) {
		return it
	}
	if it != nil {
		s.forget(it) // its holders take up the one made now
	}
	it = s.newItem(key, tc)
	s.certs.Store(key, it)
	if it.leaf != nil {
		go s.maintain(it)
	}
	return it
}

// live returns the item under key, nil if there is none or it is gone.
func (s *Stapler) live(key certKey) *item {
	if v, ok := s.certs.Load(key); ok && !v.(*item).gone.Load() {
		return v.(*item)
	}
	return nil
}

// hasIssuer reports whether tc's chain holds the issuer of its leaf.
func hasIssuer(tc *tls.Certificate) bool {
	_, issuer, err := chainOf(tc)
	return err == nil && issuer != nil
}

// forget drops it: its holders take up a new item at their next use.
func (s *Stapler) forget(it *item) {
	it.gone.Store(true)
	s.certs.CompareAndDelete(it.key, it)
}

// newItem reads tc's leaf and issuer. A leaf without an OCSP responder is
// normal; one with a responder but no issuer in the chain is warned
// about, since no answer could be verified.
func (s *Stapler) newItem(key certKey, tc *tls.Certificate) *item {
	it := &item{key: key}
	it.lastUsed.Store(time.Now().Unix())
	leaf, issuer, err := chainOf(tc)
	if err != nil {
		s.log.Warn("ocsp stapling: certificate unreadable", "error", err)
		return it
	}
	it.names = namesOf(leaf)
	responder, err := ocspclient.Options{}.ResponderURL(leaf)
	if err != nil || time.Now().After(leaf.NotAfter) {
		return it // no responder (or expired): no staple, nothing to say
	}
	if issuer == nil {
		it.lacksIssuer = true
		s.log.Warn("ocsp stapling: the certificate chain lacks the issuer, no staple", "serial", serialHex(leaf.SerialNumber),
			"names", it.names, "issuer", leaf.Issuer.String(), "not_after", leaf.NotAfter)
		return it
	}
	it.leaf, it.issuer, it.responder = leaf, issuer, responder
	return it
}

// namesOf returns the leaf's DNS names, or its common name when it has
// none: what an operator knows the certificate by.
func namesOf(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	return []string{leaf.Subject.CommonName}
}

// chainOf returns tc's leaf and, if the chain holds it, its issuer.
func chainOf(tc *tls.Certificate) (leaf, issuer *x509.Certificate, err error) {
	if len(tc.Certificate) == 0 {
		return nil, nil, errors.New("empty chain")
	}
	leaf = tc.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(tc.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("leaf: %w", err)
		}
	}
	if len(tc.Certificate) < 2 {
		return leaf, nil, nil
	}
	issuer, err = x509.ParseCertificate(tc.Certificate[1])
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	if leaf.CheckSignatureFrom(issuer) != nil {
		return leaf, nil, nil
	}
	return leaf, issuer, nil
}

// serialHex prints a serial number as openssl does, lower-case hex.
func serialHex(n *big.Int) string { return n.Text(16) }
