package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// listener is an address a command run from this file binds.
type listener struct {
	key, addr string
	command   string // "serve", "certs" or "issuer"
	// validating marks a [[certificate]]'s standalone listener, open
	// only while certs validates: two of them need not clash.
	validating bool
}

// listenerClashes refuses two listeners on one address, which check
// accepted and the command refused at start, or certs when validating
// ("bind: address already in use"): serve's http_listen, https_listen
// and admin_listen among themselves, and certs_admin_listen, each
// [[certificate]]'s standalone and issuer_listen beside the listeners of
// the other commands run from the file (serve when it has a [[site]],
// certs when it has a [[certificate]]). A listener on every interface
// (":443", "0.0.0.0:443", "[::]:443") clashes with any address of its
// port; port 0 (any free port) with none.
func (d *decoder) listenerClashes(c *Config) {
	runs := map[string]bool{"serve": len(c.Sites) > 0, "certs": len(c.Certificates) > 0, "issuer": c.IssuerListen != ""}
	ls := []listener{
		{key: "http_listen", addr: c.HTTPListen, command: "serve"},
		{key: "https_listen", addr: c.HTTPSListen, command: "serve"},
		{key: "admin_listen", addr: c.AdminListen, command: "serve"},
		{key: "certs_admin_listen", addr: c.CertsAdminListen, command: "certs"},
		{key: "issuer_listen", addr: c.IssuerListen, command: "issuer"},
	}
	for i, ct := range c.Certificates {
		key := indexKey("certificate", i+1) + ".standalone"
		ls = append(ls, listener{key: key, addr: ct.Standalone, command: "certs", validating: true})
	}
	for i, a := range ls {
		for _, b := range ls[:i] {
			if a.validating && b.validating || a.command != b.command && !(runs[a.command] && runs[b.command]) || !sameSocket(a.addr, b.addr) {
				continue
			}
			d.clash(a, b)
			break
		}
	}
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
	d.errorf(a.key, "%q: also the address of %s (%q, %s): %s", a.addr, b.key, b.addr, where, both)
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
	return strings.EqualFold(ha, hb) || takesPort(ha, hb) || takesPort(hb, ha)
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
