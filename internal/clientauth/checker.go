package clientauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/storage"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds the revocation check of one chain, all
	// fetches included.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxCRLSize bounds a CRL downloaded from a distribution
	// point, in bytes.
	DefaultMaxCRLSize = 32 << 20
	// DefaultFileCheckInterval is how often CRL files are looked at for
	// changes (one stat per file, in the background).
	DefaultFileCheckInterval = 5 * time.Second
)

// failureBackoff is how long after a failed fetch from one distribution
// point or about one certificate no new fetch starts: checks in that time
// get the last error at once, so a responder that is down or hangs is not
// asked on every handshake.
const failureBackoff = 10 * time.Second

// errNoSource is wrapped when nothing could answer for a certificate: no
// CRL covers its issuer, it names no distribution point, no responder.
var errNoSource = errors.New("no CRL covers the issuer and no OCSP responder is named")

// Options are the Checker's means, the same for every site.
type Options struct {
	// Storage keeps fetched CRLs and OCSP responses across restarts;
	// nil keeps them in memory only.
	Storage storage.Storage
	// Logger receives soft-fail warnings and CRL file reloads; nil
	// discards.
	Logger *slog.Logger
	// HTTPClient fetches CRLs and OCSP responses; nil means a new
	// http.Client with http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds the revocation check of one chain; 0 means
	// DefaultTimeout. A fetch still running then goes on in the
	// background (itself bounded by Timeout) and fills the caches.
	Timeout time.Duration
	// MaxCRLSize bounds a downloaded CRL in bytes; 0 means
	// DefaultMaxCRLSize.
	MaxCRLSize int64
	// FileCheckInterval is how often CRL files are looked at for
	// changes; 0 means DefaultFileCheckInterval.
	FileCheckInterval time.Duration
}

// Checker checks verified client certificate chains against a Policy.
// Its methods are safe for concurrent use. Close stops its background
// work.
type Checker struct {
	policy  Policy
	links   caLinks // Policy.CAs linked to their issuers
	log     *slog.Logger
	timeout time.Duration

	files   *crlFiles   // nil without CRL files
	fetched *crlFetcher // nil without crl_fetch
	ocsp    *ocspSource // nil without ocsp

	softFails softFailLog

	base   context.Context // ends at Close
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Go against Close
	closed bool
	wg     sync.WaitGroup
}

// New validates p (Policy.Validate) and returns its Checker. It reads
// p.CRLFiles, and fails if one cannot be read or parsed.
func New(p Policy, opts Options) (*Checker, error) {
	links, err := p.validate()
	if err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	c := &Checker{policy: p, links: links, log: opts.Logger, timeout: opts.Timeout}
	c.base, c.cancel = context.WithCancel(context.Background())
	if !p.checks() {
		return c, nil
	}
	if len(p.CRLFiles) > 0 {
		files, err := newCRLFiles(p.CRLFiles, p.CAs, opts.FileCheckInterval, c.log)
		if err != nil {
			c.cancel()
			return nil, fmt.Errorf("client_auth: %w", err)
		}
		c.files = files
		c.spawn(func() { files.watch(c.base) })
	}
	if p.CRLFetch {
		c.fetched = newCRLFetcher(c.base, opts, c.spawn)
	}
	if p.OCSP {
		c.ocsp = newOCSPSource(c.base, opts, ocspclient.Options{
			Client: opts.HTTPClient, Responder: p.OCSPResponder, Timeout: opts.Timeout,
		}, c.spawn)
	}
	return c, nil
}

// withDefaults fills in the zero fields of opts.
func withDefaults(opts Options) Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxCRLSize <= 0 {
		opts.MaxCRLSize = DefaultMaxCRLSize
	}
	if opts.FileCheckInterval <= 0 {
		opts.FileCheckInterval = DefaultFileCheckInterval
	}
	return opts
}

// Policy returns the policy c checks.
func (c *Checker) Policy() Policy { return c.policy }

// Close stops background refreshes and waits for them. Checks after
// Close still work from what is cached, and fetch nothing.
func (c *Checker) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// spawn runs f in the background unless c is closed; it reports whether
// it did.
func (c *Checker) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(f)
	return true
}

// VerifyConnection checks the client certificate of a handshake whose
// tls.Config has ClientAuth set to Policy.ClientAuth and ClientCAs to
// Policy.Pool, for tls.Config.VerifyConnection:
//
//	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
//		return checker.VerifyConnection(hello.Context(), cs)
//	}
//
// No certificate passes in optional mode and is refused with
// ReasonNoCertificate in require mode. Otherwise the certificate passes
// if one of cs.VerifiedChains passes Check; if none does, the error is
// the Refusal of the first. It returns within Options.Timeout.
func (c *Checker) VerifyConnection(ctx context.Context, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if c.policy.Mode == ModeOptional {
			return nil
		}
		return refuse(ReasonNoCertificate, nil, 0, "no client certificate given", nil)
	}
	if len(cs.VerifiedChains) == 0 {
		return refuse(ReasonUntrusted, cs.PeerCertificates[0], 0, "not verified against the client CAs", nil)
	}
	if len(cs.VerifiedChains) > 1 { // one timeout for them all
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var first error
	for _, chain := range cs.VerifiedChains {
		err := c.Check(ctx, chain)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Check checks one chain that the TLS stack verified: the client's
// certificate first, the trust anchor last. It refuses a chain longer
// than Policy.VerifyDepth allows and a certificate outside its validity
// period. Then, when Policy.Revocation asks for it, it checks for
// revocation, each against its issuer:
//
//   - always the client's own certificate (depth 0), against the next
//     certificate up; a chain of one (the client's certificate is itself
//     in Policy.CAs) is continued with its issuer from CAs, and a
//     self-signed certificate alone is checked against itself, as
//     OpenSSL does: a chain of one never means nothing to check;
//   - in chain mode, also every certificate above it that is not
//     self-signed, the chain continued from the trust anchor with its
//     issuers in Policy.CAs up to the self-signed root (caLinks):
//     an intermediate in the ca file is checked too.
//
// The certificates the chain is continued with must be within their
// validity periods too, as the chain's own (ReasonExpired): where CAs
// hold several that fit (a root re-issued with new dates), a valid one
// is taken.
//
// A certificate whose issuer is nowhere at hand gets no answer
// (Policy.Unknown decides). It returns nil or a *Refusal, within
// Options.Timeout (or ctx's deadline if sooner).
func (c *Checker) Check(ctx context.Context, chain []*x509.Certificate) error {
	now := time.Now()
	if err := c.checkShape(chain, now); err != nil {
		return err
	}
	if !c.policy.checks() {
		return nil
	}
	full, rooted := chain, false
	switch {
	case c.policy.Revocation == RevocationChain:
		full, rooted = c.links.extend(chain, now)
	case len(chain) == 1: // leaf mode needs no more than chain[1]
		full, rooted = c.links.issuerOfOne(chain[0], now)
	}
	if err := checkAdded(chain, full, c.policy.Revocation == RevocationChain, now); err != nil {
		return err
	}
	deadline := now.Add(c.timeout)
	for i, cert := range full {
		last := i == len(full)-1
		if i > 0 && (c.policy.Revocation != RevocationChain || last && rooted) {
			break
		}
		var issuer *x509.Certificate
		switch {
		case !last:
			issuer = full[i+1]
		case rooted: // a self-signed certificate alone: its own issuer
			issuer = cert
		}
		if err := c.checkOne(ctx, deadline, cert, issuer, i); err != nil {
			return err
		}
	}
	return nil
}

// checkShape refuses an empty chain, one longer than Policy.VerifyDepth
// allows, and one with a certificate outside its validity period at now.
func (c *Checker) checkShape(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 || chain[0] == nil {
		return refuse(ReasonNoCertificate, nil, 0, "empty chain", nil)
	}
	if above := len(chain) - 1; above > c.policy.VerifyDepth {
		return refuse(ReasonDepth, chain[0], 0, fmt.Sprintf("%d certificates above it, verify_depth %d", above, c.policy.VerifyDepth), nil)
	}
	for i, cert := range chain {
		if cert == nil || cert.SerialNumber == nil {
			return refuse(ReasonUntrusted, chain[0], 0, fmt.Sprintf("no parsed certificate at depth %d", i), nil)
		}
		if !validAt(cert, now) {
			return refuseExpired(cert, i)
		}
	}
	return nil
}

// checkAdded refuses, as checkShape does, a certificate outside its
// validity period at now that extend put in full, continuing chain: a
// twin in place of its last certificate, the issuers above. crypto/x509
// checked the dates of chain only. Of those, all are used in chain mode;
// otherwise only the issuer of a chain of one (full[1]), and only it is
// looked at.
func checkAdded(chain, full []*x509.Certificate, all bool, now time.Time) error {
	from, to := len(chain), len(full)
	if full[from-1] != chain[from-1] {
		from--
	}
	if !all {
		to = min(to, 2)
	}
	for i := from; i < to; i++ {
		if !validAt(full[i], now) {
			return refuseExpired(full[i], i)
		}
	}
	return nil
}

// validAt reports whether now is within cert's validity period.
func validAt(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(cert.NotBefore) && !now.After(cert.NotAfter)
}

// refuseExpired refuses cert, at depth, as outside its validity period.
func refuseExpired(cert *x509.Certificate, depth int) error {
	return refuse(ReasonExpired, cert, depth, fmt.Sprintf("valid from %s to %s",
		cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)), nil)
}

// checkOne checks cert, issued by issuer, at depth in its chain, asking
// no longer than until deadline. A nil issuer (not at hand) gets no
// answer.
func (c *Checker) checkOne(ctx context.Context, deadline time.Time, cert, issuer *x509.Certificate, depth int) error {
	var a answer
	var err error
	if issuer == nil {
		err = fmt.Errorf("its issuer %q is not in ca: nothing to check its revocation against", cert.Issuer)
	} else {
		a, err = c.status(ctx, deadline, cert, issuer)
	}
	if err != nil {
		if c.policy.Unknown == UnknownAllow {
			if ok, left := c.softFails.note(time.Now()); ok {
				c.log.Warn("client certificate revocation status unknown, allowed (revocation_unknown = allow)",
					"subject", cert.Subject.String(), "serial", serialHex(cert.SerialNumber), "depth", depth,
					"error", err, "not_logged", left)
			}
			return nil
		}
		return refuse(ReasonUnknown, cert, depth, "no fresh CRL or OCSP answer", err)
	}
	if a.revoked {
		return refuse(ReasonRevoked, cert, depth, a.describe(), nil)
	}
	return nil
}

// softFailLogEvery is the least time between two warnings about clients
// let in without a revocation answer: while a responder is down, every
// handshake would log one.
const softFailLogEvery = 10 * time.Second

// softFailLog spaces out the soft-fail warnings and counts those left out.
type softFailLog struct {
	mu   sync.Mutex
	last time.Time
	left int // not logged since last
}

// note records a soft fail at now and reports whether to log it, with
// the number left out before it.
func (s *softFailLog) note(now time.Time) (log bool, left int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < softFailLogEvery {
		s.left++
		return false, 0
	}
	left, s.last, s.left = s.left, now, 0
	return true, left
}

// answer is what one source says of one certificate.
type answer struct {
	revoked bool
	at      time.Time // revocation time
	reason  int       // RFC 5280 CRLReason
	source  string    // "crl <file or URL>" or "ocsp <URL>"
}

// describe says what a revoked answer says, for Refusal.Detail.
func (a answer) describe() string {
	return fmt.Sprintf("%s: revoked at %s, reason %d (%s)", a.source, a.at.UTC().Format(time.RFC3339), a.reason, reasonName(a.reason))
}

// crlReasons are the names of RFC 5280 §5.3.1's CRLReason codes (7 is
// unused).
var crlReasons = []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}

// reasonName is the RFC 5280 name of a CRLReason code.
func reasonName(code int) string {
	if code >= 0 && code < len(crlReasons) && crlReasons[code] != "" {
		return crlReasons[code]
	}
	return "unknown reason"
}

// status asks the sources about cert. First what is at hand without
// asking anyone (CRL files, fetched CRLs in memory, OCSP answers in
// memory or storage), then what must be fetched: the CRL distribution
// points, then the OCSP responder. A CRL answer is enough; OCSP is asked
// only when no CRL answers. The error, when nothing answers, joins every
// source's reason. The timer of deadline is set only when something must
// be fetched: a handshake answered from memory pays for none.
func (c *Checker) status(ctx context.Context, deadline time.Time, cert, issuer *x509.Certificate) (answer, error) {
	now := time.Now()
	var errs []error
	if c.files != nil {
		a, ok, err := c.files.lookup(cert, issuer, now)
		if ok {
			return a, nil
		}
		errs = appendErr(errs, err)
	}
	if c.fetched != nil {
		if a, ok := c.fetched.cached(cert, issuer, now); ok {
			return a, nil
		}
	}
	askOCSP := c.ocsp != nil
	if askOCSP {
		a, fresh, err := c.ocsp.cached(ctx, cert, issuer, now)
		if err == nil {
			return a, nil
		}
		if fresh { // a fresh answer saying "unknown": asking again would say the same
			askOCSP = false
			errs = append(errs, err)
		}
	}
	if c.fetched == nil && !askOCSP {
		return answer{}, joinErrs(errs)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.fetched != nil {
		a, err := c.fetchCRL(ctx, deadline, askOCSP, cert, issuer)
		if err == nil {
			return a, nil
		}
		errs = appendErr(errs, err)
	}
	if askOCSP {
		a, err := c.ocsp.ask(ctx, cert, issuer)
		if err == nil {
			return a, nil
		}
		errs = appendErr(errs, err)
	}
	return answer{}, joinErrs(errs)
}

// fetchCRL asks the distribution points about cert. When the responder
// may be asked next, it waits for them only half the time left, so a
// distribution point that hangs leaves time for OCSP (the download goes
// on in the background).
func (c *Checker) fetchCRL(ctx context.Context, deadline time.Time, thenOCSP bool, cert, issuer *x509.Certificate) (answer, error) {
	if thenOCSP {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		defer cancel()
	}
	return c.fetched.fetch(ctx, cert, issuer)
}

// joinErrs joins the reasons why no source answered, or says that none
// could.
func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return errNoSource
	}
	return errors.Join(errs...)
}

// appendErr appends err unless it is nil or is errNoSource itself,
// which says only that a source had nothing for the certificate (an
// error wrapping it says more, and is kept).
func appendErr(errs []error, err error) []error {
	if err == nil || err == errNoSource { // itself, not an error wrapping it
		return errs
	}
	return append(errs, err)
}
