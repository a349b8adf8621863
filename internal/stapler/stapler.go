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
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
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
	// Idle is how long an unused certificate is kept up; 0 means
	// DefaultIdle.
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

// sweep forgets, every hour until ctx ends, what no handshake used for
// Options.Idle, so replaced certificates are not kept alive: the values
// (and those whose item is gone), and the items with nothing to staple
// or an expired leaf (the others forget themselves, see maintain).
func (s *Stapler) sweep() {
	t := time.NewTicker(time.Hour)
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
		if h := v.(*holder); h.it.gone.Load() || s.idle(&h.lastUsed, now) {
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
// DER and of the DER of the certificate after it in the chain (the
// issuer the staple is verified against), each length-prefixed.
type certKey [sha256.Size]byte

// keyOf returns tc's certKey.
func keyOf(tc *tls.Certificate) certKey {
	h := sha256.New()
	for i := 0; i < 2 && i < len(tc.Certificate); i++ {
		n := len(tc.Certificate[i])
		_, _ = h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		_, _ = h.Write(tc.Certificate[i])
	}
	var k certKey
	h.Sum(k[:0])
	return k
}

// item is one certificate the Stapler has seen, shared by every value
// holding it.
type item struct {
	key       certKey
	leaf      *x509.Certificate // nil: nothing to staple (no responder, no issuer)
	issuer    *x509.Certificate
	responder string
	names     []string                            // the leaf's DNS names, else its common name
	gone      atomic.Bool                         // forgotten (idle, stopped): its holders take up a new item
	staple    atomic.Pointer[ocspclient.Response] // the good response to staple, nil for none
	lastUsed  atomic.Int64                        // unix seconds of the last handshake with any holder
	next      atomic.Int64                        // unix nanoseconds of the next fetch
	failures  atomic.Int64                        // in a row, for the backoff
	failTotal atomic.Int64                        // since the item was made, for the metric
	last      atomic.Pointer[ocspclient.Response] // the last response taken, whatever its status
	revoked   atomic.Bool
}

// holder is one certificate value the Stapler has seen, and the copy of
// it that carries its item's staple.
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
// its goroutine) if there is none.
func (s *Stapler) itemOf(tc *tls.Certificate) *item {
	key := keyOf(tc)
	if v, ok := s.certs.Load(key); ok && !v.(*item).gone.Load() {
		return v.(*item)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.certs.Load(key); ok && !v.(*item).gone.Load() { // made meanwhile
		return v.(*item)
	}
	it := s.newItem(key, tc)
	s.certs.Store(key, it)
	if it.leaf != nil {
		go s.maintain(it)
	}
	return it
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
