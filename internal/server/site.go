package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot/internal/stapler"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// Site is one virtual host: the names it answers to, what it serves and
// the certificate it presents. Exactly one of Root, Proxy and Redirect
// may be set; a site with none of them (and no route matching) answers
// 404 but still completes TLS handshakes for its names.
type Site struct {
	// Names are DNS names ("example.com"), wildcards ("*.example.com",
	// matching exactly one label) or IP addresses (matched against the
	// local address of a connection without SNI). At least one is required;
	// a name may belong to one site only.
	Names []string

	// Default makes this site answer handshakes with no or an unknown SNI
	// and requests whose Host names no site (clients that address the
	// server by IP). At most one site may be the default. Without one, an
	// unknown SNI gets an unrecognized_name alert.
	Default bool

	// Root serves static files from this directory. Requests never leave
	// it: ".." segments, encoded separators and symbolic links that point
	// outside are refused, and hidden files (a segment starting with ".",
	// except ".well-known") are not served.
	Root string

	// Proxy forwards requests, round-robin, to these upstream URLs
	// ("http://127.0.0.1:8080"). All upstreams of one handler must have
	// the same path; the request path is appended to it. The client's
	// Host header is passed on; X-Forwarded-For, -Host and -Proto are set
	// (the client's own are dropped). An upstream refusing connections is
	// skipped for 10 s, and a request without a body moves on to the next
	// one at once. WebSocket upgrades pass through (HTTP/1.1).
	Proxy []string
	// ProxyTLS is how Proxy's https:// upstreams are checked; the zero
	// value checks them against the system's roots, for each URL's host.
	ProxyTLS ProxyTLS

	// Redirect answers 308 with this target; "{uri}" is replaced by the
	// request URI (path and query).
	Redirect string

	// Routes split the site by path prefix; the longest matching prefix
	// wins, and requests matching none go to the site's own handler.
	Routes []Route

	// HTTPRedirect makes plain HTTP requests redirect (308) to HTTPS.
	// When false the site is served on plain HTTP too. The zero value is
	// false: callers mapping a config whose default is "redirect" must set
	// it.
	HTTPRedirect bool

	// HSTS sends Strict-Transport-Security on HTTPS responses.
	HSTS bool

	// CSP is the Content-Security-Policy value; empty sends none.
	CSP string

	// Headers are extra response headers. They replace the defaults
	// (Referrer-Policy, X-Content-Type-Options, …) and any header of the
	// same name from a proxied upstream; an empty value removes the
	// header.
	Headers map[string]string

	// TrustedProxies are the networks of proxies in front of this site.
	// From them, forwarding headers (Forwarded, X-Forwarded-*,
	// X-Real-IP, …) pass to the upstreams of Proxy, with the client
	// address appended to X-Forwarded-For; from any other client they
	// are removed and X-Forwarded-For/-Host/-Proto are set afresh.
	TrustedProxies []netip.Prefix

	// Cert is where the site's certificate comes from.
	Cert CertSource

	// TLSProfile is the Mozilla profile of handshakes selecting this
	// site (by SNI, or as the default site): tlsprofile.Intermediate
	// when empty, or tlsprofile.Modern (TLS 1.3 only). Whatever the
	// certificate source, the profile applies.
	TLSProfile tlsprofile.Profile

	// ClientAuth, when set, asks clients of this site for a certificate
	// and passes their identity to its upstreams; nil asks for none.
	// Requests proxied by any site never carry headers starting with
	// DefaultClientCertHeaderPrefix from the client.
	ClientAuth *ClientAuth

	// NoOCSPStapling turns OCSP stapling off for this site's handshakes
	// (config ocsp_stapling = false). Otherwise, with Options.Stapler
	// set, a certificate whose leaf names an OCSP responder is served
	// with that responder's fresh "good" answer stapled, once one is at
	// hand (see internal/stapler).
	NoOCSPStapling bool
}

// Route sends requests whose path starts with Path to its own handler.
// Path starts with "/"; it matches at segment boundaries ("/api" matches
// "/api" and "/api/x", not "/apix"). The request path is not stripped:
// Root maps the full path under the directory, Proxy forwards it as is.
type Route struct {
	Path     string
	Root     string
	Proxy    []string
	ProxyTLS ProxyTLS
	Redirect string
}

// ProxyTLS is how a proxy checks its https:// upstreams' certificates.
type ProxyTLS struct {
	// CAFile is a PEM file of the CA certificates an upstream's
	// certificate must chain to, instead of the system's roots; read
	// when the site is compiled (at start and at each reload).
	CAFile string
	// ServerName is sent in SNI and looked for in the certificate
	// instead of the URL's host.
	ServerName string
}

// clientConfig is the TLS configuration for upstreams that p describes;
// nil for the zero ProxyTLS (the transport's default).
func (p ProxyTLS) clientConfig() (*tls.Config, error) {
	if p == (ProxyTLS{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p.ServerName}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxy CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("proxy CA %s: holds no PEM certificate", p.CAFile)
		}
	}
	return cfg, nil
}

// CertSource gives a site its certificate: either GetCertificate (the
// ACME Manager's, called on every handshake that selects this site) or a
// PEM certificate chain and key in files, which the Server loads at
// start and reloads when they change (checked every
// Options.CertCheckInterval, never on the handshake path). Files that do
// not exist yet are not an error: the site serves a temporary
// self-signed certificate, with a warning, until both exist and load; a
// pair that exists but does not load is.
type CertSource struct {
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	CertFile       string
	KeyFile        string
}

// site is a compiled Site, immutable once published in a table.
type site struct {
	name         string // first configured name, for logs
	names        []string
	dflt         bool
	getCert      func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	tlsConf      *tls.Config // the profile's; nil: the listener's (default profile)
	file         *fileCert
	routes       []route // longest prefix first
	main         http.Handler
	tlsHeaders   []header
	plainHeaders []header
	httpRedirect bool
	auth         *siteAuth        // nil: no client certificates asked for
	stapler      *stapler.Stapler // nil: no OCSP stapling
}

type route struct {
	prefix string
	h      http.Handler
}

// handler returns the handler for a request path; nil means 404.
func (st *site) handler(path string) http.Handler {
	for i := range st.routes {
		if matchPrefix(path, st.routes[i].prefix) {
			return st.routes[i].h
		}
	}
	return st.main
}

// cleanPath is a request path as the handlers serve it: "." and ".."
// segments resolved and repeated slashes folded (path.Clean), a
// trailing slash kept. Routes and require_paths match on it, so that
// "//admin/", "/./admin/" or "/x/../admin/" (also percent-encoded: the
// path is decoded) reach what "/admin/" reaches and nothing else.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// matchPrefix reports whether path is inside prefix, at a segment boundary.
func matchPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return prefix[len(prefix)-1] == '/' && path == prefix[:len(prefix)-1]
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

// certificate returns the site's certificate for hello. matched is false
// when the site was chosen as the default for an unknown or missing SNI:
// a GetCertificate source then sees the site's first name instead.
func (st *site) certificate(hello *tls.ClientHelloInfo, matched bool) (*tls.Certificate, error) {
	tc, err := st.unstapled(hello, matched)
	if err != nil || st.stapler == nil {
		return tc, err
	}
	return st.stapler.Staple(tc), nil
}

// unstapled is certificate without the OCSP staple.
func (st *site) unstapled(hello *tls.ClientHelloInfo, matched bool) (*tls.Certificate, error) {
	if st.file != nil {
		return st.file.current(), nil
	}
	if matched {
		return st.getCert(hello)
	}
	h := *hello
	h.ServerName = st.names[0]
	return st.getCert(&h)
}

// normalizeName lower-cases a configured name and drops a trailing dot.
func normalizeName(n string) (string, error) {
	n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
	if n == "" {
		return "", errors.New("empty name")
	}
	if ip := net.ParseIP(n); ip != nil {
		return ip.String(), nil
	}
	label := strings.TrimPrefix(n, "*.")
	if strings.Contains(label, "*") {
		return "", fmt.Errorf("name %q: a wildcard must be the whole first label", n)
	}
	for _, l := range strings.Split(label, ".") {
		if !validLabel(l) {
			return "", fmt.Errorf("name %q: invalid label %q", n, l)
		}
	}
	return n, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkSiteShape checks what needs no I/O: one handler, one cert source,
// well-formed routes.
func checkSiteShape(s *Site) error {
	if len(s.Names) == 0 {
		return errors.New("no names")
	}
	if n := countHandlers(s.Root, s.Proxy, s.Redirect); n > 1 {
		return errors.New("more than one of root, proxy and redirect")
	}
	hasFunc, hasFiles := s.Cert.GetCertificate != nil, s.Cert.CertFile != "" || s.Cert.KeyFile != ""
	switch {
	case hasFunc && hasFiles:
		return errors.New("both a certificate function and certificate files")
	case !hasFunc && !hasFiles:
		return errors.New("no certificate source")
	case hasFiles && (s.Cert.CertFile == "" || s.Cert.KeyFile == ""):
		return errors.New("cert_file and key_file go together")
	}
	if s.ClientAuth != nil && !s.HTTPRedirect {
		return errors.New("client auth needs HTTPRedirect: the site would be served over plain HTTP without client certificates")
	}
	var paths []string
	for i, r := range s.Routes {
		if !strings.HasPrefix(r.Path, "/") {
			return fmt.Errorf("route %d: path %q does not start with /", i, r.Path)
		}
		if slices.Contains(paths, r.Path) {
			return fmt.Errorf("route %d: path %q appears twice", i, r.Path)
		}
		paths = append(paths, r.Path)
		if countHandlers(r.Root, r.Proxy, r.Redirect) != 1 {
			return fmt.Errorf("route %s: needs exactly one of root, proxy and redirect", r.Path)
		}
	}
	return nil
}

func countHandlers(root string, proxy []string, redirect string) int {
	n := 0
	for _, set := range []bool{root != "", len(proxy) > 0, redirect != ""} {
		if set {
			n++
		}
	}
	return n
}
