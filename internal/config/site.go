package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot"
	"golang.org/x/net/http/httpguts"
)

// site decodes one [[site]] table; global supplies the defaults.
func (d *decoder) site(t *table, global *Config) Site {
	s := Site{Line: d.pos.line(t.path), HTTPRedirect: true}
	namePaths := d.siteNames(t, &s)
	d.handler(t, &s.Root, &s.Proxy, &s.Redirect, &s.ProxyTLS)
	for _, rt := range t.tables("route") {
		s.Routes = append(s.Routes, d.route(rt, s.Routes))
	}
	d.certSource(t, &s, global)
	t.flag("default", &s.Default)
	t.flag("http_redirect", &s.HTTPRedirect)
	t.flag("hsts", &s.HSTS)
	staple := true
	t.flag("ocsp_stapling", &staple)
	s.NoOCSPStapling = !staple
	if t.str("csp", &s.CSP) && (s.CSP == "" || !httpguts.ValidHeaderFieldValue(s.CSP)) {
		d.errorf(t.key("csp"), "not a valid header value")
	}
	if ht := t.sub("headers"); ht != nil {
		s.Headers = d.headers(ht, siteHeaderKeys(&s))
	}
	s.TLSProfile = global.TLSProfile
	if t.str("tls_profile", &s.TLSProfile) {
		d.tlsProfile(t.key("tls_profile"), s.TLSProfile)
	}
	var proxies []string
	if paths, ok := t.strings("trusted_proxies", &proxies); ok {
		s.TrustedProxies = d.prefixes(paths, proxies)
	}
	if ct := t.sub("client_auth"); ct != nil {
		s.ClientAuth = d.clientAuth(ct, &s)
	}
	t.done()
	d.claim(t.path, namePaths, &s)
	return s
}

// siteNames decodes and normalises the names of a site.
func (d *decoder) siteNames(t *table, s *Site) []string {
	paths, ok := t.strings("names", &s.Names)
	if !ok {
		if _, present := t.m["names"]; !present {
			d.errorf(t.key("names"), "required: the names this site answers for")
		}
		return nil
	}
	if len(s.Names) == 0 {
		d.errorf(t.key("names"), "at least one name is needed")
	}
	var names, kept []string
	for i, n := range s.Names {
		if err := nameMistake(n); err != nil {
			d.errorf(paths[i], "%w", err)
			continue
		}
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			d.errorf(paths[i], "%w", err)
			continue
		}
		if slices.Contains(names, nn) {
			d.errorf(paths[i], "%q is listed twice", nn)
			continue
		}
		names, kept = append(names, nn), append(kept, paths[i])
	}
	s.Names = names
	return kept
}

// handler decodes root, proxy (with proxy_ca and proxy_server_name) and
// redirect, shared by sites and routes, and returns how many are set.
func (d *decoder) handler(t *table, root *string, proxy *[]string, redirect *string, ptls *ProxyTLS) int {
	var set []string
	if t.str("root", root) {
		*root = d.dir(t.key("root"), *root)
		set = append(set, "root")
	}
	paths, ok := t.strings("proxy", proxy)
	if ok {
		if len(*proxy) == 0 {
			d.errorf(t.key("proxy"), "at least one upstream is needed")
		}
		for i, p := range paths {
			d.upstream(p, (*proxy)[i])
		}
		d.upstreamPaths(paths, *proxy)
		set = append(set, "proxy")
	}
	d.proxyTLS(t, ok, *proxy, ptls)
	if t.str("redirect", redirect) {
		d.redirect(t.key("redirect"), *redirect)
		set = append(set, "redirect")
	}
	if len(set) > 1 {
		d.errorf(t.key(set[1]), "%s and %s are exclusive: a site or route serves one way", set[0], set[1])
	}
	return len(set)
}

// proxyTLS decodes proxy_ca and proxy_server_name, which say how the
// https:// upstreams of proxy (hasProxy: the key is set) are checked.
func (d *decoder) proxyTLS(t *table, hasProxy bool, proxy []string, ptls *ProxyTLS) {
	hasCA := t.str("proxy_ca", &ptls.CAFile)
	hasName := t.str("proxy_server_name", &ptls.ServerName)
	set := map[string]bool{"proxy_ca": hasCA, "proxy_server_name": hasName}
	for _, k := range []string{"proxy_ca", "proxy_server_name"} {
		switch {
		case !set[k]:
		case !hasProxy:
			d.errorf(t.key(k), "goes with proxy: it says how https:// upstreams are checked")
		case !slices.ContainsFunc(proxy, func(u string) bool { return strings.HasPrefix(strings.ToLower(u), "https://") }):
			d.errorf(t.key(k), "applies to https:// upstreams, and every upstream of this proxy is http://")
		}
	}
	if hasCA {
		ptls.CAFile = d.pemFile(t.key("proxy_ca"), ptls.CAFile)
	}
	if hasName {
		n, err := tlspilot.NormalizeName(ptls.ServerName)
		switch {
		case err != nil:
			d.errorf(t.key("proxy_server_name"), "%w", err)
		case strings.HasPrefix(n, "*.") || net.ParseIP(n) != nil:
			d.errorf(t.key("proxy_server_name"), "%q: a host name, as the upstream's certificate names it (not a wildcard or an address)", ptls.ServerName)
		}
		ptls.ServerName = n
	}
}

// route decodes one [[site.route]]; earlier are the site's routes so far.
func (d *decoder) route(t *table, earlier []Route) Route {
	r := Route{Line: d.pos.line(t.path)}
	if !t.str("path", &r.Path) {
		if _, present := t.m["path"]; !present {
			d.errorf(t.key("path"), "required: the path prefix this route serves")
		}
	} else if d.pathPrefix(t.key("path"), r.Path) {
		for _, e := range earlier {
			if strings.TrimSuffix(e.Path, "/") == strings.TrimSuffix(r.Path, "/") {
				d.errorf(t.key("path"), "%q: already the path of the route at line %d (%q), which matches the same requests", r.Path, e.Line, e.Path)
			}
		}
	}
	if d.handler(t, &r.Root, &r.Proxy, &r.Redirect, &r.ProxyTLS) == 0 {
		d.errorf(t.path, "a route needs one of root, proxy or redirect")
	}
	t.done()
	return r
}

// certSource decodes how the site gets its certificate: files, or ACME
// with the site's own or the global challenge and key types.
func (d *decoder) certSource(t *table, s *Site, global *Config) {
	hasCert := t.str("cert_file", &s.CertFile)
	hasKey := t.str("key_file", &s.KeyFile)
	ownChallenge := t.str("challenge", &s.Challenge)
	ktPaths, ownKeyTypes := t.strings("key_type", &s.KeyTypes)
	if hasCert || hasKey {
		d.certFiles(t, s, hasCert, hasKey)
		for k, own := range map[string]bool{"challenge": ownChallenge, "key_type": ownKeyTypes} {
			if own {
				d.errorf(t.key(k), "not used with cert_file: the certificate is managed elsewhere")
			}
		}
		s.Challenge, s.KeyTypes = "", nil
		return
	}
	if ownChallenge {
		d.challenge(t.key("challenge"), &s.Challenge)
		if s.Challenge == tlspilot.DNS01 && global.DNS == nil {
			d.errorf(t.key("challenge"), "dns-01 needs a [dns] table")
		}
	} else {
		s.Challenge = global.Challenge
	}
	if ownKeyTypes {
		s.KeyTypes = d.keyTypes(t.key("key_type"), ktPaths, s.KeyTypes)
	} else {
		s.KeyTypes = slices.Clone(global.KeyTypes)
	}
}

// certFiles checks a certificate managed elsewhere: both files, a key
// that matches, and a certificate that covers the site's names. Files
// that do not exist yet are not an error (CertFilesMissing): another
// process (`tlspilot certs`) may write them after serve starts.
func (d *decoder) certFiles(t *table, s *Site, hasCert, hasKey bool) {
	if !hasCert || !hasKey {
		missing := map[bool]string{true: "key_file", false: "cert_file"}[hasCert]
		d.errorf(t.key(missing), "cert_file and key_file go together")
		return
	}
	if s.CertFile != "" && s.KeyFile != "" {
		s.CertFile, s.KeyFile = d.resolve(s.CertFile), d.resolve(s.KeyFile)
		if notExist(s.CertFile) || notExist(s.KeyFile) {
			s.CertFilesMissing = true
			d.unexpandedCertFiles(t, s)
			return
		}
	}
	before := len(d.errs)
	s.CertFile = d.readableFile(t.key("cert_file"), s.CertFile)
	s.KeyFile = d.readableFile(t.key("key_file"), s.KeyFile)
	if len(d.errs) > before {
		return
	}
	pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		d.errorf(t.key("cert_file"), "%s, %s: %w", s.CertFile, s.KeyFile, err)
		return
	}
	leaf := pair.Leaf
	for _, n := range s.Names {
		if !covers(leaf, n) {
			d.errorf(t.key("cert_file"), "%s does not cover %s", s.CertFile, n)
		}
	}
}

// unexpandedCertFiles refuses a missing cert_file or key_file written
// as a shell would expand it ("~/x", "$HOME/x"): it would never appear,
// and the site would keep its temporary certificate.
func (d *decoder) unexpandedCertFiles(t *table, s *Site) {
	for _, f := range []struct{ key, p string }{{"cert_file", s.CertFile}, {"key_file", s.KeyFile}} {
		if h := d.unexpanded(f.p); h != "" && notExist(f.p) {
			d.errorf(t.key(f.key), "%s does not exist%s", f.p, h)
		}
	}
}

// notExist reports whether nothing is at path (nor, perhaps, at its
// directory) yet.
func notExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// covers reports whether the certificate is valid for name (a wildcard
// name needs the same wildcard in the certificate).
func covers(leaf *x509.Certificate, name string) bool {
	if strings.HasPrefix(name, "*.") {
		return slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, name) })
	}
	return leaf.VerifyHostname(name) == nil
}

// claim checks what the site's names need from other sites and from its
// challenge: unique names, one default site, wildcards only with dns-01,
// IP addresses never with dns-01.
func (d *decoder) claim(path string, namePaths []string, s *Site) {
	if d.owners == nil {
		d.owners = map[string]string{}
	}
	for i, n := range s.Names {
		if owner, ok := d.owners[n]; ok {
			d.errorf(namePaths[i], "%s is already a name of %s (line %d)", n, owner, d.pos.line(owner))
			continue
		}
		d.owners[n] = path
		switch {
		case s.CertFile != "":
		case strings.HasPrefix(n, "*.") && s.Challenge != tlspilot.DNS01:
			d.errorf(namePaths[i], "%s: a wildcard name needs challenge = \"dns-01\" (this site uses %s)", n, s.Challenge)
		case net.ParseIP(n) != nil && s.Challenge == tlspilot.DNS01:
			d.errorf(namePaths[i], "%s: an IP address cannot be proved with dns-01", n)
		}
	}
	if s.Default {
		if d.defaultSite != "" {
			d.errorf(joinKey(path, "default"), "%s is already the default site (line %d)", d.defaultSite, d.pos.line(d.defaultSite))
		}
		d.defaultSite = path
	}
}

// prefixes parses trusted proxy networks: CIDR prefixes ("10.0.0.0/8")
// or single addresses. An IPv4-mapped IPv6 one ("::ffff:10.0.0.1",
// "::ffff:10.0.0.0/104") is taken as the IPv4 network it maps: the
// server compares a client's address in its IPv4 form, so as written it
// never matched, and the proxy was silently not trusted.
func (d *decoder) prefixes(paths, in []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for i, v := range in {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				d.errorf(paths[i], "%q: want a network (\"10.0.0.0/8\") or an address", v)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				d.errorf(paths[i], "%q: an IPv4-mapped network must be /96 or longer: write the IPv4 network (\"10.0.0.0/8\") and any IPv6 one apart", v)
				continue
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}
