package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tlspilot/tlspilot"
)

// listener is an address a command run from this file binds.
type listener struct {
	key, addr string
	command   string // "serve", "certs" or "issuer"
	// validating marks a [[certificate]]'s standalone listener, open
	// only while certs validates: two of them need not clash.
	validating bool
	// servesAddr marks http_listen and https_listen as certs holds them
	// too (certsChallengeListeners): taken by serve, certs leaves the
	// answers to it, so they clash with no listener of serve's; one of
	// serve's at the same address clashes with its own already.
	servesAddr bool
	// why says why the command listens there, when the key does not.
	why string
}

// listenerClashes refuses two listeners on one address, which check
// accepted and the command refused at start, or certs when validating
// ("bind: address already in use"): serve's http_listen, https_listen
// and admin_listen among themselves, and certs_admin_listen, each
// [[certificate]]'s standalone and issuer_listen beside the listeners of
// the other commands run from the file (serve when it has a [[site]],
// certs when it has a [[certificate]]), and http_listen and https_listen
// as certs holds them beside its other listeners. Hosts are compared as
// bound ("localhost" as it resolves here, usually 127.0.0.1;
// "[::ffff:127.0.0.1]" is 127.0.0.1, "[0::1]" is "[::1]"). A listener on every interface
// (":443", "0.0.0.0:443", "[::]:443") clashes with any address of its
// port; port 0 (any free port) with none.
func (d *decoder) listenerClashes(c *Config) {
	runs := map[string]bool{"serve": len(c.Sites) > 0, "certs": len(c.Certificates) > 0, "issuer": c.IssuerListen != ""}
	ls := []listener{
		{key: "http_listen", addr: c.HTTPListen, command: "serve"},
		{key: "https_listen", addr: c.HTTPSListen, command: "serve"},
		{key: "admin_listen", addr: c.AdminListen, command: "serve"},
		{key: d.certsAdminKey(), addr: c.CertsAdminListen, command: "certs"},
		{key: "issuer_listen", addr: c.IssuerListen, command: "issuer"},
	}
	for i, ct := range c.Certificates {
		key := indexKey("certificate", i+1) + ".standalone"
		ls = append(ls, listener{key: key, addr: ct.Standalone, command: "certs", validating: true})
	}
	ls = append(ls, certsChallengeListeners(c)...)
	for i, a := range ls {
		for _, b := range ls[:i] {
			if !mayClash(a, b, runs) || !sameSocket(a.addr, b.addr) {
				continue
			}
			d.clash(a, b)
			break
		}
	}
}

// certsAdminKey is the key that sets certs' admin listener: admin_listen
// when certs_admin_listen is not written and takes its value (in a file
// without [[site]], see certsAdminDefault), so that a clash is reported
// at a line of the file.
func (d *decoder) certsAdminKey() string {
	if d.pos.line("certs_admin_listen") == 0 {
		return "admin_listen"
	}
	return "certs_admin_listen"
}

// mayClash reports whether listeners a and b may not share an address:
// both held by one command, or by two commands run from the file (runs),
// and not two validating listeners, nor serve's and certs' http_listen
// and https_listen, shared by design.
func mayClash(a, b listener, runs map[string]bool) bool {
	switch {
	case a.validating && b.validating, a.servesAddr && b.command == "serve", b.servesAddr && a.command == "serve":
		return false
	case a.command == b.command:
		return true
	}
	return runs[a.command] && runs[b.command]
}

// certsChallengeListeners are http_listen and https_listen as certs
// holds them, for as long as it runs, when a certificate answers http-01
// (on http_listen) or tls-alpn-01 (on https_listen) neither by files
// (challenge_dir) nor on its own listener (standalone), as renew does.
// certs tries to bind both, but failing on the one no certificate needs
// harms nothing.
func certsChallengeListeners(c *Config) []listener {
	var ls []listener
	for _, l := range []struct{ key, addr, challenge string }{
		{"http_listen", c.HTTPListen, tlspilot.HTTP01},
		{"https_listen", c.HTTPSListen, tlspilot.TLSALPN01},
	} {
		for i, ct := range c.Certificates {
			if ct.Challenge != l.challenge || ct.ChallengeDir != "" || ct.Standalone != "" {
				continue
			}
			why := fmt.Sprintf("where certs answers the %s challenges of %s (line %d), which has neither challenge_dir nor standalone", l.challenge, indexKey("certificate", i+1), ct.Line)
			ls = append(ls, listener{key: l.key, addr: l.addr, command: "certs", servesAddr: true, why: why})
			break
		}
	}
	return ls
}

// clash reports two listeners on one address at the one written last.
func (d *decoder) clash(a, b listener) {
	if d.pos.line(a.key) < d.pos.line(b.key) {
		a, b = b, a
	}
	where := "the default"
	if l := d.pos.line(b.key); l > 0 {
		where = fmt.Sprintf("line %d", l)
	}
	both := "tlspilot " + a.command + " cannot listen on it twice"
	if a.command != b.command {
		both = fmt.Sprintf("tlspilot %s and tlspilot %s, run from this file, cannot both listen on it", a.command, b.command)
	}
	if b.why != "" {
		where += ", " + b.why
	}
	if a.why != "" {
		both = a.key + " is " + a.why + ": " + both
	}
	both += standaloneHint(a, b)
	d.errorf(a.key, "%q: also the address of %s (%q, %s): %s", a.addr, b.key, b.addr, where, both)
}

// standaloneHint is the way out when a, a standalone listener, is on
// http_listen or https_listen (b), where the certificate's challenges
// are answered without it.
func standaloneHint(a, b listener) string {
	switch {
	case !a.validating:
		return ""
	case b.servesAddr:
		return "; leave standalone out: certs answers the certificate's challenges there too"
	case b.command == "serve" && (b.key == "http_listen" || b.key == "https_listen"):
		return "; leave standalone out: serve answers the certificate's challenges there, from the storage it shares with certs"
	}
	return ""
}

// sameSocket reports whether binding a and then b (host:port) surely
// fails: the same port, and the same host or one on every interface.
func sameSocket(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false // off, or refused already
	}
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil || na == 0 || na != nb {
		return false
	}
	ha, hb = listenHost(ha), listenHost(hb)
	return ha == hb || takesPort(ha, hb) || takesPort(hb, ha)
}

// listenHost is host as the address Go binds, written one way: an IP
// address in its canonical form, an IPv4-mapped one as IPv4 ("::ffff:
// 127.0.0.1" binds 127.0.0.1), "localhost" as the address it resolves
// to here (from the hosts file: Go listens on the first IPv4 address of
// a name, else the first), other names in lower case, unresolved.
func listenHost(host string) string {
	if strings.EqualFold(host, "localhost") {
		if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host); err == nil && len(ips) > 0 {
			return firstIPv4(ips).Unmap().String()
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(host)
}

// firstIPv4 is the first IPv4 address of ips, else the first address.
func firstIPv4(ips []netip.Addr) netip.Addr {
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip
		}
	}
	return ips[0]
}

// takesPort reports whether a listener on host w takes the port of host h
// too: "" and "::" (both families, as Go listens) every address,
// "0.0.0.0" every IPv4 one.
func takesPort(w, h string) bool {
	switch w {
	case "", "::":
		return true
	case "0.0.0.0":
		ip, err := netip.ParseAddr(h)
		return err == nil && ip.Unmap().Is4()
	}
	return false
}
