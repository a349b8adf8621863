package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientAuth makes a site ask TLS clients for a certificate. It applies
// per server name: other sites on the same listener are not affected,
// and their handshakes cost what they cost without it.
//
// The Server verifies the chain itself (against CAs, with the
// client-authentication key usage, at most VerifyDepth CA certificates
// above the client's) in the handshake, then asks Verifier, so that
// every refusal, a missing or untrusted certificate included, is logged
// with the certificate's subject and serial and counted by reason
// (ClientAuthRefusals). A refused client gets a TLS alert
// (bad_certificate).
//
// Session tickets: the site encrypts its tickets with keys of its own,
// made when the site is compiled (at start and at each reload) and
// rotated daily, so a ticket from another site, or from before a
// reload, is not resumed: the client makes a full handshake, giving its
// certificate. A session the site resumes is checked again all the same
// (chain, depth, Verifier), so a certificate revoked since is refused.
//
// Connections open across a reload: a request on one whose handshake
// was checked under other rules than the site's new ones (ClientAuth
// added, other CAs, depth or Verifier, Optional turned off) is answered
// 421 and the connection closed, so the client makes a new handshake.
type ClientAuth struct {
	// CAs are the certificates client certificates must chain to; at
	// least one.
	CAs []*x509.Certificate
	// Optional lets clients without a certificate in; a certificate
	// given is verified all the same, and RequirePaths need one.
	Optional bool
	// VerifyDepth is the most CA certificates allowed above the client
	// certificate in its verified chain, the one from CAs included: 0
	// accepts only certificates of CAs themselves, 1 those a CA of CAs
	// signed, 2 adds one intermediate.
	VerifyDepth int
	// Verifier, if set, checks the verified chain (the client's
	// certificate first, the CA of CAs last) for revocation in the
	// handshake; nil checks nothing more.
	Verifier ClientVerifier
	// HeaderPrefix starts the names of the identity headers sent to the
	// site's upstreams (see identity.go); "" means
	// DefaultClientCertHeaderPrefix.
	HeaderPrefix string
	// RequirePaths are path prefixes (matched at segment boundaries, as
	// routes are) that need a verified client certificate when Optional
	// is set; a request without one gets 403.
	RequirePaths []string
}

// ClientVerifier checks a client certificate chain the Server has
// verified. Implementations MUST be safe for concurrent use and SHOULD
// return quickly (they run inside handshakes): answers cached in memory,
// network waits bounded, and MUST honour ctx's cancellation.
type ClientVerifier interface {
	// Check returns nil to accept the chain, else an error that refuses
	// the client. An error with a RefusalReason method (found with
	// errors.As) names the reason counted in ClientAuthRefusals and
	// logged; any other error counts as ReasonRevocationFailed.
	Check(ctx context.Context, chain []*x509.Certificate) error
}

// Reasons a client certificate is refused by the Server itself, beside
// those a ClientVerifier names ("revoked", "unknown").
const (
	ReasonNoCertificate    = "no_certificate" // required, none given
	ReasonUntrusted        = "untrusted"      // no chain to the CAs with the client-authentication usage
	ReasonExpired          = "expired"        // outside its validity period
	ReasonDepth            = "depth"          // verified, but only with more CA certificates than VerifyDepth allows
	ReasonRevocationFailed = "check_failed"   // the Verifier failed without naming a reason
)

// refusalReasons are counted from zero for every site with ClientAuth,
// so rates and alerts work before the first refusal.
var refusalReasons = [...]string{ReasonNoCertificate, ReasonUntrusted, ReasonExpired, ReasonDepth, "revoked", "unknown"}

// clientCheckTimeout bounds a Verifier's check, whatever its own
// timeouts: the handshake and request headers have readHeaderTimeout.
const clientCheckTimeout = readHeaderTimeout / 2

// siteAuth is a site's compiled ClientAuth.
type siteAuth struct {
	site     string
	roots    *x509.CertPool
	optional bool
	depth    int
	verifier ClientVerifier
	paths    []string
	ident    *identity
	srv      *Server
	tickets  *ticketKeys
	verified chainCache
}

// compileClientAuth makes the site's TLS configuration: base (its
// profile's) with client certificates asked for and checked by st.auth.
func (s *Server) compileClientAuth(st *site, in *ClientAuth, base *tls.Config) error {
	if len(in.CAs) == 0 {
		return errors.New("client auth: no CA certificate")
	}
	if in.VerifyDepth < 0 {
		return fmt.Errorf("client auth: verify depth %d", in.VerifyDepth)
	}
	ident, err := newIdentity(in.HeaderPrefix)
	if err != nil {
		return err
	}
	a := &siteAuth{site: st.name, roots: x509.NewCertPool(), optional: in.Optional, depth: in.VerifyDepth,
		verifier: in.Verifier, paths: slices.Clone(in.RequirePaths), ident: ident, srv: s}
	for _, c := range in.CAs {
		a.roots.AddCert(c)
	}
	for _, p := range a.paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("client auth: required path %q does not start with /", p)
		}
	}
	if base == nil {
		base = s.tlsBase
	}
	c := base.Clone()
	c.GetConfigForClient = nil
	// The Server verifies (verifyConnection), so that it can log and
	// count every refusal: crypto/tls only asks for a certificate, and
	// calls VerifyConnection for every handshake, resumed ones included.
	// Without keys of the site's own, crypto/tls would resume a session
	// from another site, or from before a reload, made without a
	// certificate: in require mode, refused instead of a full handshake.
	c.ClientAuth = tls.RequestClientCert
	c.ClientCAs = a.roots // names the CAs in the CertificateRequest
	c.VerifyConnection = a.verifyConnection
	if a.tickets, err = newTicketKeys(c, time.Now()); err != nil {
		return err
	}
	st.auth, st.tlsConf = a, c
	s.refusals.register(a.site)
	return nil
}

// rotateTicketKeys rotates the session ticket keys of t's sites with
// client auth when due.
func (s *Server) rotateTicketKeys(t *table) {
	now := time.Now()
	for _, st := range t.sites {
		if st.auth == nil {
			continue
		}
		if err := st.auth.tickets.rotate(now); err != nil {
			s.log.Error("session tickets: the key was not rotated", "site", st.name, "error", err)
		}
	}
}

// verifyConnection checks the client's certificate in the handshake
// (tls.Config.VerifyConnection): chain, depth, then the Verifier.
func (a *siteAuth) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if a.optional {
			return nil
		}
		return a.refuse(ReasonNoCertificate, nil, errors.New("the client sent no certificate"))
	}
	leaf := cs.PeerCertificates[0]
	chain, reason, err := a.verifyChain(cs.PeerCertificates)
	if err != nil {
		return a.refuse(reason, leaf, err)
	}
	if a.verifier == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.srv.baseCtx, clientCheckTimeout)
	defer cancel()
	if err := a.verifier.Check(ctx, chain); err != nil {
		return a.refuse(refusalReason(err), leaf, err)
	}
	return nil
}

// verifyChain verifies the client's certificates against the CAs and
// returns the shortest chain within the depth, or the reason none is. A
// chain verified before for the same certificates is taken from the
// cache while every certificate of it is within its validity period:
// the signature checks cost as much as the handshake's own.
func (a *siteAuth) verifyChain(certs []*x509.Certificate) ([]*x509.Certificate, string, error) {
	now := time.Now()
	key := chainKey(certs)
	if chain := a.verified.get(key, now); chain != nil {
		return chain, "", nil
	}
	chain, reason, err := a.verifyChainAt(certs, now)
	if err == nil {
		a.verified.put(key, chain)
	}
	return chain, reason, err
}

func (a *siteAuth) verifyChainAt(certs []*x509.Certificate, now time.Time) ([]*x509.Certificate, string, error) {
	opts := x509.VerifyOptions{Roots: a.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, ReasonExpired, err
		}
		return nil, ReasonUntrusted, err
	}
	best := slices.MinFunc(chains, func(x, y []*x509.Certificate) int { return len(x) - len(y) })
	if len(best)-1 > a.depth {
		return nil, ReasonDepth, fmt.Errorf("%d CA certificates above the client's, verify depth %d", len(best)-1, a.depth)
	}
	return best, "", nil
}

// refuse logs and counts a refusal and returns the handshake's error.
func (a *siteAuth) refuse(reason string, leaf *x509.Certificate, err error) error {
	a.srv.refusals.add(a.site, reason)
	attrs := []slog.Attr{slog.String("site", a.site), slog.String("reason", reason)}
	if leaf != nil {
		attrs = append(attrs, slog.String("subject", leaf.Subject.String()), slog.String("serial", leaf.SerialNumber.Text(16)))
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	a.srv.log.LogAttrs(context.Background(), slog.LevelWarn, "client certificate refused", attrs...)
	return fmt.Errorf("client certificate refused (%s): %w", reason, err)
}

// refusalReason is the reason a Verifier's error names, else
// ReasonRevocationFailed.
func refusalReason(err error) string {
	var r interface{ RefusalReason() string }
	if errors.As(err, &r) {
		if reason := r.RefusalReason(); reason != "" {
			return reason
		}
	}
	return ReasonRevocationFailed
}

// connKey is the context key of the connection a request came on.
type connKey struct{}

// withConn is the servers' ConnContext hook: it keeps the connection in
// its context, for checkedOn.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// checkedOn reports whether the handshake of r's connection was checked
// under rules that a admits: a itself, or, from before a reload, the
// same CAs, depth and Verifier, with a certificate required then if a
// requires one. A connection kept open across a reload that added
// client authentication, or replaced its CAs, is not: its client may
// have given no certificate, or one the site no longer trusts. An
// unknown connection is not either.
func (a *siteAuth) checkedOn(r *http.Request) bool {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitConn)
	if !ok {
		return false
	}
	b := lc.auth.Load()
	if a == b {
		return true
	}
	return b != nil && a.depth == b.depth && (a.optional || !b.optional) &&
		a.roots.Equal(b.roots) && sameVerifier(a.verifier, b.verifier)
}

// sameVerifier reports whether x and y are the same Verifier (the
// command keeps a site's checker across reloads when its settings do
// not change). Values of a type that cannot be compared are not.
func sameVerifier(x, y ClientVerifier) bool {
	if x == nil || y == nil {
		return x == nil && y == nil
	}
	tx := reflect.TypeOf(x)
	if tx != reflect.TypeOf(y) || !tx.Comparable() {
		return false
	}
	return x == y
}

// allows reports whether a request may be served: in optional mode, a
// path under RequirePaths needs a client certificate (verified in the
// handshake of this site: see table.forTLSRequest).
func (a *siteAuth) allows(r *http.Request) bool {
	if !a.optional || len(a.paths) == 0 || r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return true
	}
	clean := cleanPath(r.URL.Path)
	for _, p := range a.paths {
		if matchPrefix(clean, p) {
			return false
		}
	}
	return true
}

// refusalCounts counts client-certificate refusals per site and reason.
// Counters outlive reloads, as Prometheus counters must.
type refusalCounts struct {
	mu sync.Mutex
	m  map[refusalKey]*atomic.Uint64
}

type refusalKey struct{ site, reason string }

// register makes the counters of site's usual reasons, at zero.
func (c *refusalCounts) register(site string) {
	for _, r := range refusalReasons {
		c.counter(site, r)
	}
}

func (c *refusalCounts) counter(site, reason string) *atomic.Uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[refusalKey]*atomic.Uint64{}
	}
	k := refusalKey{site, reason}
	n := c.m[k]
	if n == nil {
		n = new(atomic.Uint64)
		c.m[k] = n
	}
	return n
}

func (c *refusalCounts) add(site, reason string) { c.counter(site, reason).Add(1) }

// ClientAuthRefusal is the number of clients a site refused for one
// reason since the Server started.
type ClientAuthRefusal struct {
	Site   string // the site's first name
	Reason string // ReasonNoCertificate, …, or a ClientVerifier's reason
	Count  uint64
}

// ClientAuthRefusals returns the refusal counters of every site that
// has (or had, before a reload) ClientAuth, sorted by site and reason;
// for tlspilot_client_auth_refusals_total. Safe for concurrent use.
func (s *Server) ClientAuthRefusals() []ClientAuthRefusal {
	c := &s.refusals
	c.mu.Lock()
	out := make([]ClientAuthRefusal, 0, len(c.m))
	for k, n := range c.m {
		out = append(out, ClientAuthRefusal{Site: k.site, Reason: k.reason, Count: n.Load()})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientAuthRefusal) int {
		if a.Site != b.Site {
			return strings.Compare(a.Site, b.Site)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}
