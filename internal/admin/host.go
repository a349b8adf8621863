package admin

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostPolicy decides which Host a request may name. The admin listener
// answers without authentication and is reachable from the browser of
// anyone on the machine (or the network, with admin_allow_remote): a web
// page whose host name its author points at 127.0.0.1 after loading (DNS
// rebinding) would be same-origin with the listener and could read
// /status and /debug/pprof. The browser still sends that page's name in
// Host, so requests are answered only when Host is an IP literal, which
// no page can rebind, "localhost", which browsers resolve to loopback
// without asking DNS, or a name the operator chose to listen on.
type hostPolicy struct {
	names map[string]bool // lower case, without a trailing dot
	any   bool            // a listener open to the network: every Host
}

// newHostPolicy allows, besides IP literals and localhost, hosts (the
// admin_hosts a proxy in front passes on) and the host of listen (the
// configured address, "host:port") when it is a name. A
// listener on every interface (":2019", "0.0.0.0:2019") or on an address
// other than loopback (admin_allow_remote) allows every Host: it is open
// to the network already, and scrapers name it as their service
// discovery does; the check guards the loopback listener, which a page
// can reach only through the browser.
func newHostPolicy(listen string, hosts []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{"localhost": true}}
	for _, h := range hosts {
		p.names[canonicalHost(h)] = true
	}
	if listen == "" {
		return p
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if addr, err := netip.ParseAddr(host); host == "" || err == nil && !addr.IsLoopback() {
		p.any = true
		return p
	}
	p.names[canonicalHost(host)] = true
	return p
}

// allows reports whether a request may name host (Request.Host, with or
// without a port). An empty Host (HTTP/1.0) names nothing a page could
// rebind and is allowed.
func (p hostPolicy) allows(host string) bool {
	if host == "" || p.any {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return p.names[canonicalHost(host)]
}

func canonicalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// refuse answers a request whose Host is not allowed.
func refuse(w http.ResponseWriter) {
	http.Error(w, "admin: this Host is not allowed: use an IP address, localhost or the listen address's name", http.StatusForbidden)
}
