// Package stapler staples OCSP responses (RFC 6960, carried in the TLS
// handshake as in RFC 6066 §8) to the server's own certificates.
//
// The handshake path never waits: Staple returns the certificate with a
// fresh, verified, "good" response attached when one is at hand, and the
// certificate as it is otherwise. Fetching, verifying, caching in storage
// and refreshing happen in a goroutine per certificate, started the first
// time the certificate is seen (Prepare or Staple). A certificate whose
// leaf names no OCSP responder (Let's Encrypt's since 2025, Pebble's) is
// left alone without a word.
package stapler

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
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
	// Logger receives a warning for each failed fetch and an error for a
	// revoked certificate; nil discards.
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
type Stapler struct {
	ctx   context.Context
	opts  Options
	log   *slog.Logger
	items sync.Map // *tls.Certificate → *item
	// byLeaf is the current item of each leaf (by SHA-256 of its DER): a
	// reload loads the same certificate into a new *tls.Certificate, whose
	// item takes over the older one's response and retires it.
	byLeaf sync.Map   // [sha256.Size]byte → *item
	leafMu sync.Mutex // serializes take-overs
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

// sweep forgets, every hour until ctx ends, the certificates with nothing
// to staple (or expired) that no handshake used for Options.Idle (the
// others forget themselves), so replaced certificates are not kept alive.
func (s *Stapler) sweep() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.items.Range(func(k, v any) bool {
				if it := v.(*item); (it.leaf == nil || now.After(it.leaf.NotAfter)) && s.idle(it, now) {
					s.items.Delete(k)
				}
				return true
			})
			s.byLeaf.Range(func(k, v any) bool {
				if cur, ok := s.items.Load(v.(*item).src); !ok || cur != v {
					s.byLeaf.Delete(k)
				}
				return true
			})
		}
	}
}

// item is one certificate the Stapler has seen.
type item struct {
	src       *tls.Certificate
	ctx       context.Context    // of its goroutine: ends when retired
	retire    context.CancelFunc // nil without a goroutine
	leaf      *x509.Certificate  // nil: nothing to staple (no responder, no issuer)
	issuer    *x509.Certificate
	responder string
	stapled   atomic.Pointer[stapled]             // nil until a good response is at hand
	lastUsed  atomic.Int64                        // unix seconds of the last handshake
	next      atomic.Int64                        // unix nanoseconds of the next fetch
	failures  atomic.Int64                        // in a row, for the backoff
	failTotal atomic.Int64                        // since the item was made, for the metric
	last      atomic.Pointer[ocspclient.Response] // the last response taken, whatever its status
	revoked   atomic.Bool
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
	it := s.item(tc)
	now := time.Now()
	if sec := now.Unix(); it.lastUsed.Load() != sec {
		it.lastUsed.Store(sec)
	}
	if it.leaf == nil {
		return tc
	}
	if st := it.stapled.Load(); st != nil && st.resp.Fresh(now) {
		return st.tc
	}
	return tc
}

// Prepare starts keeping a staple for tc, so that it is ready before
// the first handshake (a certificate just loaded from files).
func (s *Stapler) Prepare(tc *tls.Certificate) {
	if tc != nil {
		s.item(tc).lastUsed.Store(time.Now().Unix())
	}
}

// item returns tc's item, creating it (and starting its goroutine) on
// first sight.
func (s *Stapler) item(tc *tls.Certificate) *item {
	if v, ok := s.items.Load(tc); ok {
		return v.(*item)
	}
	it := s.newItem(tc)
	if it.leaf == nil {
		v, _ := s.items.LoadOrStore(tc, it)
		return v.(*item)
	}
	s.leafMu.Lock()
	defer s.leafMu.Unlock()
	if v, ok := s.items.Load(tc); ok { // made meanwhile
		return v.(*item)
	}
	it.ctx, it.retire = context.WithCancel(s.ctx)
	key := sha256.Sum256(it.leaf.Raw)
	if v, ok := s.byLeaf.Load(key); ok {
		s.takeOver(it, v.(*item))
	}
	s.byLeaf.Store(key, it)
	s.items.Store(tc, it)
	go s.maintain(it)
	return it
}

// takeOver gives it, a new certificate value with the same leaf as old
// (a reload), old's last response and staple, and retires old: one
// goroutine and one status entry per leaf, however many reloads.
func (s *Stapler) takeOver(it, old *item) {
	if r := old.last.Load(); r != nil {
		it.last.Store(r)
	}
	if st := old.stapled.Load(); st != nil {
		cp := *it.src
		cp.OCSPStaple = st.resp.Raw
		it.stapled.Store(&stapled{resp: st.resp, tc: &cp})
	}
	it.failTotal.Store(old.failTotal.Load())
	it.revoked.Store(old.revoked.Load())
	old.retire()
	s.items.Delete(old.src)
}

// newItem reads tc's leaf and issuer. A leaf without an OCSP responder is
// normal; one with a responder but no issuer in the chain is warned
// about, since no answer could be verified.
func (s *Stapler) newItem(tc *tls.Certificate) *item {
	it := &item{src: tc}
	it.lastUsed.Store(time.Now().Unix())
	leaf, issuer, err := chainOf(tc)
	if err != nil {
		s.log.Warn("ocsp stapling: certificate unreadable", "error", err)
		return it
	}
	responder, err := ocspclient.Options{}.ResponderURL(leaf)
	if err != nil || time.Now().After(leaf.NotAfter) {
		return it // no responder (or expired): no staple, nothing to say
	}
	if issuer == nil {
		s.log.Warn("ocsp stapling: the certificate chain lacks the issuer, no staple", "serial", serialHex(leaf.SerialNumber))
		return it
	}
	it.leaf, it.issuer, it.responder = leaf, issuer, responder
	return it
}

// chainOf returns tc's leaf and, if the chain holds it, its issuer.
func chainOf(tc *tls.Certificate) (leaf, issuer *x509.Certificate, err error) {
	if len(tc.Certificate) == 0 {
		return nil, nil, errors.New("empty chain")
	}
	leaf = tc.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(tc.Certificate[0]); err != nil {
			return nil, nil, err
		}
	}
	if len(tc.Certificate) < 2 {
		return leaf, nil, nil
	}
	issuer, err = x509.ParseCertificate(tc.Certificate[1])
	if err != nil {
		return nil, nil, err
	}
	if leaf.CheckSignatureFrom(issuer) != nil {
		return leaf, nil, nil
	}
	return leaf, issuer, nil
}

// serialHex prints a serial number as openssl does, lower-case hex.
func serialHex(n *big.Int) string { return n.Text(16) }
