package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/tempcert"
)

// acmeSide is serve's ACME Manager, made only when a site needs a
// certificate from the CA: at start, or at the first reload that adds
// such a site. Until then serve opens no storage and no key-encryption
// key, so a serve whose sites all bring their own certificate files
// (kept by `tlspilot certs` under another user) needs no storage at all
// and writes nothing. The hooks it hands the server and the admin
// listener at start work before the Manager exists: no certificate, no
// http-01 answer, a status without certificates.
type acmeSide struct {
	log *slog.Logger
	adm *adminListener
	ntf *hooks

	m    atomic.Pointer[tlspilot.Manager]
	runs sync.WaitGroup
	// from is the config the Manager was made from, nil before; set by
	// ensure, read by the goroutine that calls it (start, then reloads).
	from *config.Config

	// prev holds, by name, the certificates the Manager served for the
	// name before a reload gave it a new certificate (names added to
	// its site, other key types): served while the Manager has only a
	// temporary one for the name, so that a site keeps its certificate
	// while the CA validates, or refuses, the new names.
	prev atomic.Pointer[map[string][]*tls.Certificate]
}

// errNoManager answers a handshake needing a managed certificate before
// any site does (a tls-alpn-01 probe to a serve that obtains nothing).
var errNoManager = errors.New("no certificate for this server name: serve obtains no certificate")

// manager is the Manager, nil until a site needs one.
func (a *acmeSide) manager() *tlspilot.Manager { return a.m.Load() }

// ensure makes the Manager when cfg has a site that needs one and there
// is none yet, refusing first what would fail only at the first order
// (terms not agreed to, a storage the user serve runs as cannot write);
// made reports whether it did. It runs after privileges are dropped, at
// start and at each reload, and first logs the names the CA will refuse
// (config.PublicCAWarnings) and the reload programs it cannot find
// (config.ReloadWarnings).
func (a *acmeSide) ensure(ctx context.Context, cfg *config.Config) (made bool, err error) {
	for _, w := range cfg.PublicCAWarnings() {
		a.log.Warn("the CA will refuse this name: " + w)
	}
	for _, w := range cfg.ReloadWarnings() {
		a.log.Warn("reload: " + w)
	}
	if a.m.Load() != nil || len(acmeCerts(cfg)) == 0 {
		return false, nil
	}
	if err := preflight(cfg); err != nil {
		return false, err
	}
	mcfg, err := managerConfig(cfg, a.log)
	if err != nil {
		return false, err
	}
	a.adm.configure(&mcfg)
	a.ntf.configure(&mcfg)
	m, err := tlspilot.New(ctx, mcfg)
	if err != nil {
		return false, newError(cfg, err)
	}
	a.m.Store(m)
	a.from = cfg
	return true, nil
}

// run runs the Manager's scheduler, if there is a Manager, until ctx
// ends; wait waits for it.
func (a *acmeSide) run(ctx context.Context) {
	if m := a.m.Load(); m != nil {
		a.runs.Go(func() { _ = m.Run(ctx) })
	}
}

func (a *acmeSide) wait() { a.runs.Wait() }

// GetCertificate is the Manager's, once there is one; where the Manager
// has only a temporary certificate, the one served before the reload
// that replaced it (keepServing), while it is valid.
func (a *acmeSide) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := a.m.Load()
	if m == nil {
		return nil, errNoManager
	}
	c, err := m.GetCertificate(hello)
	if err != nil || !tempcert.Is(c) {
		return c, err
	}
	if p := a.previous(hello); p != nil {
		return p, nil
	}
	return c, nil
}

// previous returns the certificate kept for hello's name (exact, then
// the wildcard covering it) that is still valid and that the client
// supports; nil if none.
func (a *acmeSide) previous(hello *tls.ClientHelloInfo) *tls.Certificate {
	prev := a.prev.Load()
	if prev == nil || len(*prev) == 0 {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" && hello.Conn != nil {
		// No SNI: the Manager looks the local address up (IP names).
		if ta, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
			name = ta.IP.String()
		}
	}
	certs := (*prev)[name]
	if _, rest, ok := strings.Cut(name, "."); ok && len(certs) == 0 {
		certs = (*prev)["*."+rest]
	}
	now := time.Now()
	for _, c := range certs {
		if now.Before(c.Leaf.NotAfter) && hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return nil
}

// keepServing is called by a reload before the Manager lets go of the
// certificates removed: it keeps what the Manager serves for them, for
// their names that now (the certificates of the new config) still has,
// beside what it kept before for those names.
func (a *acmeSide) keepServing(removed, now []tlspilot.Cert) {
	m := a.m.Load()
	if m == nil {
		return
	}
	wanted := map[string]bool{}
	for _, c := range now {
		for _, n := range c.Names {
			wanted[n] = true
		}
	}
	revoked := map[string]bool{} // serials: a revoked certificate is not kept
	for _, st := range m.Status() {
		if !st.RevokedAt.IsZero() {
			revoked[st.Serial] = true
		}
	}
	kept := map[string][]*tls.Certificate{}
	for _, c := range removed {
		certs := servedFor(m, c.Names, revoked)
		if len(certs) == 0 {
			continue
		}
		for _, n := range c.Names {
			if wanted[n] {
				kept[n] = certs
			}
		}
	}
	for { // swapped, not stored: forget may run meanwhile
		old := a.prev.Load()
		next := map[string][]*tls.Certificate{}
		if old != nil {
			for n, certs := range *old {
				if wanted[n] {
					next[n] = certs
				}
			}
		}
		for n, certs := range kept {
			next[n] = certs
		}
		if a.prev.CompareAndSwap(old, &next) {
			return
		}
	}
}

// forget stops serving the kept certificate whose leaf is leaf (reported
// revoked): the Manager, no longer having it, cannot replace it.
func (a *acmeSide) forget(leaf *x509.Certificate) {
	for {
		old := a.prev.Load()
		if old == nil {
			return
		}
		next := map[string][]*tls.Certificate{}
		for n, certs := range *old {
			certs = slices.DeleteFunc(slices.Clone(certs), func(c *tls.Certificate) bool {
				return c.Leaf != nil && c.Leaf.Equal(leaf)
			})
			if len(certs) > 0 {
				next[n] = certs
			}
		}
		if a.prev.CompareAndSwap(old, &next) {
			return
		}
	}
}

// servedFor returns the certificates other than temporary ones that m
// serves for the certificate of names: the ECDSA one and the RSA one
// of dual certificates; none whose serial (hex) is in revoked.
func servedFor(m *tlspilot.Manager, names []string, revoked map[string]bool) []*tls.Certificate {
	name := names[0]
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = "tlspilot-reload." + rest // a name the wildcard covers
	}
	hellos := []*tls.ClientHelloInfo{
		{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13}, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}},
		{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13}, SignatureSchemes: []tls.SignatureScheme{tls.PSSWithSHA256}},
	}
	var out []*tls.Certificate
	for _, h := range hellos {
		c, err := m.GetCertificate(h)
		if err == nil && c.Leaf != nil && !tempcert.Is(c) && !slices.Contains(out, c) &&
			!revoked[c.Leaf.SerialNumber.Text(16)] {
			out = append(out, c)
		}
	}
	return out
}

// HTTPHandler is the Manager's http-01 handler once there is one, next
// before.
func (a *acmeSide) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := a.m.Load(); m != nil {
			m.HTTPHandler(next).ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Status is the Manager's, or no certificate.
func (a *acmeSide) Status() []tlspilot.CertStatus {
	if m := a.m.Load(); m != nil {
		return m.Status()
	}
	return []tlspilot.CertStatus{}
}

// Report is the Manager's, or a report without certificates: serve
// manages none, and does not read a storage it has no use for.
func (a *acmeSide) Report(ctx context.Context) tlspilot.StatusReport {
	if m := a.m.Load(); m != nil {
		return m.Report(ctx)
	}
	return tlspilot.NewStatusReport(time.Now(), []tlspilot.CertStatus{}, nil)
}

// StorageStatus is the Manager's (admin.StorageSource); the zero value,
// reported as nothing, without one: no storage is open.
func (a *acmeSide) StorageStatus() tlspilot.StorageStatus {
	if m := a.m.Load(); m != nil {
		return m.StorageStatus()
	}
	return tlspilot.StorageStatus{}
}

var (
	_ admin.Source        = (*acmeSide)(nil)
	_ admin.StorageSource = (*acmeSide)(nil)
)
