package server

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// compile checks sites and builds a table. Static roots already open in
// old (or earlier in this table) are reused; roots opened here are
// closed again if compiling fails.
func (s *Server) compile(sites []Site, old *table) (_ *table, err error) {
	t := &table{exact: map[string]*site{}, wild: map[string]*site{}, roots: map[string]*rootDir{}, strip: identityPrefixes(sites)}
	defer func() {
		if err != nil {
			for p, d := range t.roots {
				if old == nil || old.roots[p] != d {
					d.retire(0)
				}
			}
		}
	}()
	for i := range sites {
		st, err := s.compileSite(&sites[i], t, old)
		if err == nil {
			err = t.add(st)
		}
		if err != nil {
			return nil, &SiteError{Index: i, Name: siteLabel(&sites[i]), Err: err}
		}
	}
	return t, nil
}

// SiteError is the error of New or Reload about one of the sites given.
type SiteError struct {
	Index int    // in Options.Sites (or Reload's sites), from 0
	Name  string // the site's first name, or "no names"
	Err   error
}

func (e *SiteError) Error() string {
	return fmt.Sprintf("site %d (%s): %v", e.Index, e.Name, e.Err)
}

func (e *SiteError) Unwrap() error { return e.Err }

func siteLabel(s *Site) string {
	if len(s.Names) == 0 {
		return "no names"
	}
	return s.Names[0]
}

// add registers st under its names.
func (t *table) add(st *site) error {
	for _, n := range st.names {
		m, key := t.exact, n
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			m, key = t.wild, rest
		}
		if m[key] != nil {
			return fmt.Errorf("name %s belongs to two sites", n)
		}
		m[key] = st
		t.ips = t.ips || net.ParseIP(n) != nil
	}
	if st.dflt {
		if t.def != nil {
			return fmt.Errorf("two default sites (%s and %s)", t.def.name, st.name)
		}
		t.def = st
	}
	t.sites = append(t.sites, st)
	if st.file != nil {
		t.certs = append(t.certs, st.file)
	}
	return nil
}

func (s *Server) compileSite(in *Site, t, old *table) (*site, error) {
	if err := checkSiteShape(in); err != nil {
		return nil, err
	}
	st := &site{dflt: in.Default, httpRedirect: in.HTTPRedirect, getCert: in.Cert.GetCertificate}
	for _, n := range in.Names {
		n, err := normalizeName(n)
		if err != nil {
			return nil, err
		}
		if slices.Contains(st.names, n) {
			return nil, fmt.Errorf("name %s listed twice", n)
		}
		st.names = append(st.names, n)
	}
	st.name = st.names[0]
	p, err := tlsprofile.Parse(string(in.TLSProfile))
	if err != nil {
		return nil, err
	}
	st.tlsConf = s.profiles[p]
	if in.ClientAuth != nil {
		if err := s.compileClientAuth(st, in.ClientAuth, st.tlsConf); err != nil {
			return nil, err
		}
	}
	if st.tlsHeaders, err = buildHeaders(in, true); err != nil {
		return nil, err
	}
	if st.plainHeaders, err = buildHeaders(in, false); err != nil {
		return nil, err
	}
	if err := s.compileCert(st, in, old); err != nil {
		return nil, err
	}
	if !in.NoOCSPStapling && s.opts.Stapler != nil {
		st.stapler = s.opts.Stapler
		if st.file != nil && st.file.loaded.Load() {
			st.stapler.Prepare(st.file.current()) // a staple ready for the first handshake
		}
	}
	hdrs := proxyHeadersOf(st.tlsHeaders)
	ident := upstreamIdentity{strip: t.strip}
	if st.auth != nil {
		ident.set = st.auth.ident
	}
	main := Route{Root: in.Root, Proxy: in.Proxy, ProxyTLS: in.ProxyTLS, Redirect: in.Redirect}
	if st.main, err = s.compileHandler(main, hdrs, in.TrustedProxies, ident, t, old); err != nil {
		return nil, err
	}
	for _, r := range in.Routes {
		h, err := s.compileHandler(r, hdrs, in.TrustedProxies, ident, t, old)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Path, err)
		}
		st.routes = append(st.routes, route{prefix: r.Path, h: h})
	}
	slices.SortStableFunc(st.routes, func(a, b route) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	return st, nil
}

// compileCert loads certificate files; a certificate that does not cover
// the site's names is served anyway (the files may be about to change)
// but logged. Files that do not exist yet get, with a warning until they
// appear, the certificate old's site loaded from the same files, else a
// temporary one.
func (s *Server) compileCert(st *site, in *Site, old *table) error {
	if in.Cert.GetCertificate != nil {
		return nil
	}
	fc, waiting, err := newFileCert(in.Cert.CertFile, in.Cert.KeyFile, st.names, old.fileCert(in.Cert))
	if err != nil {
		return err
	}
	st.file = fc
	switch {
	case waiting && fc.loaded.Load():
		s.log.Warn("certificate files unavailable; serving the loaded certificate",
			"site", st.name, "cert_file", fc.certFile, "key_file", fc.keyFile)
		return nil
	case waiting:
		s.log.Warn("certificate files do not exist yet: serving a temporary self-signed certificate until they appear",
			"site", st.name, "cert_file", fc.certFile, "key_file", fc.keyFile)
		return nil
	}
	for _, n := range st.names {
		if strings.HasPrefix(n, "*.") {
			continue
		}
		if err := fc.current().Leaf.VerifyHostname(n); err != nil {
			s.log.Warn("certificate file does not cover a site name", "site", st.name, "name", n, "cert_file", fc.certFile)
		}
	}
	return nil
}

// fileCert returns t's certificate read from the files of src, nil if
// none (or t is nil).
func (t *table) fileCert(src CertSource) *fileCert {
	if t == nil {
		return nil
	}
	for _, fc := range t.certs {
		if fc.certFile == src.CertFile && fc.keyFile == src.KeyFile {
			return fc
		}
	}
	return nil
}

// compileHandler builds the handler for one of r's Root, Proxy or
// Redirect (its Path is not used: the site's own handler is a Route
// too); nil when none is set. ident is what a proxy does with client
// identity headers.
func (s *Server) compileHandler(r Route, hdrs proxyHeaders, trusted []netip.Prefix, ident upstreamIdentity, t, old *table) (http.Handler, error) {
	switch {
	case r.Root != "":
		d, err := s.rootDir(r.Root, t, old)
		if err != nil {
			return nil, err
		}
		return &static{root: d, log: s.log}, nil
	case len(r.Proxy) > 0:
		return newProxy(r.Proxy, r.ProxyTLS, hdrs, trusted, ident, s.env)
	case r.Redirect != "":
		return newRedirect(r.Redirect)
	}
	return nil, nil
}

// rootDir returns the open directory for path, shared by every handler
// of t that serves it and carried over from old.
func (s *Server) rootDir(path string, t, old *table) (*rootDir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", path, err)
	}
	if d := t.roots[abs]; d != nil {
		return d, nil
	}
	if old != nil && old.roots[abs] != nil {
		t.roots[abs] = old.roots[abs]
		return t.roots[abs], nil
	}
	d, err := openRootDir(abs, s.budget)
	if err != nil {
		return nil, err
	}
	t.roots[abs] = d
	return d, nil
}
