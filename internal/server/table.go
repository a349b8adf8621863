package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
)

// table is one immutable generation of the site configuration. The
// Server swaps whole tables atomically: a handshake or request works
// with the table it loaded from start to end.
type table struct {
	exact map[string]*site // "example.com", "192.0.2.1"
	wild  map[string]*site // "*.example.com" stored as "example.com"
	def   *site
	ips   bool // some site names an IP address
	sites []*site
	certs []*fileCert
	roots map[string]*rootDir // by absolute path
	strip []string            // identity header prefixes of every site (identityPrefixes)
}

// lookup finds the site for a normalised host name: exact match first,
// then a wildcard covering the first label. It does not allocate.
func (t *table) lookup(name string) *site {
	if st := t.exact[name]; st != nil {
		return st
	}
	if i := strings.IndexByte(name, '.'); i > 0 && len(t.wild) > 0 {
		return t.wild[name[i+1:]]
	}
	return nil
}

// forHello picks the site for a ClientHello. matched is false when the
// default site was chosen for a missing or unknown SNI; st is nil when
// no site applies.
func (t *table) forHello(hello *tls.ClientHelloInfo) (st *site, matched bool) {
	name := hello.ServerName
	if name == "" && t.ips {
		name = localIP(hello.Conn)
	}
	if name != "" {
		if st = t.lookup(normalizeHost(name)); st != nil {
			return st, true
		}
	}
	return t.def, false
}

// forTLSRequest picks the site for a request that arrived over TLS. The
// Host must belong to the same site as the SNI of the connection (or
// both fall to the default site); otherwise the request was sent on the
// wrong connection and nil is returned, answered with 421. A site with
// client authentication is served only on connections whose handshake
// selected it, without SNI too: its client certificate checks ran there.
func (t *table) forTLSRequest(r *http.Request) *site {
	hs := t.lookup(normalizeHost(r.Host))
	if hs == nil {
		hs = t.def
	}
	if r.TLS == nil || hs == nil {
		return hs
	}
	if r.TLS.ServerName == "" {
		if hs.auth != nil && t.noSNISite(r) != hs {
			return nil
		}
		return hs
	}
	ss := t.lookup(normalizeHost(r.TLS.ServerName))
	if ss == nil {
		ss = t.def
	}
	if ss != hs {
		return nil
	}
	return hs
}

// noSNISite is the site forHello chose for the request's connection,
// made without SNI: the one named by the local address, else the
// default.
func (t *table) noSNISite(r *http.Request) *site {
	if t.ips {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ta, ok := a.(*net.TCPAddr); ok {
				if st := t.exact[ta.IP.String()]; st != nil {
					return st
				}
			}
		}
	}
	return t.def
}

// forPlainRequest picks the site for a plain HTTP request by its Host.
func (t *table) forPlainRequest(r *http.Request) *site {
	if st := t.lookup(normalizeHost(r.Host)); st != nil {
		return st
	}
	return t.def
}

// normalizeHost strips a port and a trailing dot and lower-cases host.
// It allocates only when host has upper-case letters.
func normalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// localIP is the local address of a connection, the name a client
// without SNI reached.
func localIP(c net.Conn) string {
	if c == nil {
		return ""
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}
