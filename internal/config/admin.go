package config

import (
	"net"
	"strings"
)

// DefaultAdminListen is the admin listener's address when "admin_listen"
// is not written: loopback only.
const DefaultAdminListen = "127.0.0.1:2019"

// AdminOff is the "admin_listen" value that disables the admin listener.
const AdminOff = "off"

// admin decodes "admin_listen", "certs_admin_listen", "admin_allow_remote"
// and "admin_hosts". The admin listener answers without
// authentication (status, metrics, profiles), so an address that is not
// loopback is refused unless admin_allow_remote says it is meant.
func (d *decoder) admin(t *table, c *Config) {
	c.AdminListen = DefaultAdminListen
	t.flag("admin_allow_remote", &c.AdminAllowRemote)
	if paths, ok := t.strings("admin_hosts", &c.AdminHosts); ok {
		for i, h := range c.AdminHosts {
			d.adminHost(paths[i], h)
		}
	}
	if t.str("admin_listen", &c.AdminListen) {
		d.adminAddr("admin_listen", c.AdminListen, c.AdminAllowRemote)
	}
	if t.str("certs_admin_listen", &c.CertsAdminListen) {
		d.adminAddr("certs_admin_listen", c.CertsAdminListen, c.AdminAllowRemote)
	}
}

// adminHost checks one of admin_hosts: a name as a proxy in front sends
// it in Host, matched whole, so that a list written as one string or a
// wildcard, which match no Host, are refused.
func (d *decoder) adminHost(path, h string) {
	switch {
	case strings.Contains(h, ","):
		d.errorf(path, "%q: one name per element of the list, such as [\"status.example.com\", \"status2.example.com\"]", h)
	case h == "" || strings.ContainsAny(h, ":/ \t[]@"):
		d.errorf(path, "%q is not a host name: write the name alone, as a proxy in front sends it in Host (no scheme, no port)", h)
	case strings.Contains(h, "*"):
		d.errorf(path, "%q: names are matched whole, with no wildcard: list each name a proxy in front sends", h)
	}
}

// certsAdminDefault fills in "certs_admin_listen" once the sites are
// known: admin_listen for a file without [[site]] tables (only certs runs
// from it), else off, since serve runs from the same file and holds
// admin_listen.
func certsAdminDefault(c *Config) {
	if c.CertsAdminListen != "" {
		return
	}
	c.CertsAdminListen = AdminOff
	if len(c.Sites) == 0 {
		c.CertsAdminListen = c.AdminListen
	}
}

// adminAddr checks an admin listener's address written at key.
func (d *decoder) adminAddr(key, addr string, allowRemote bool) {
	if addr == AdminOff {
		return
	}
	n := len(d.errs)
	d.listen(key, addr)
	if len(d.errs) > n || allowRemote || isLoopback(addr) {
		return
	}
	d.errorf(key, "%q is not a loopback address, and the admin listener answers anyone who reaches it "+
		"(status, metrics, profiles) without authentication: listen on 127.0.0.1 or [::1], "+
		"or set admin_allow_remote = true if that is meant (behind a firewall or a proxy that authenticates)", addr)
}

// isLoopback reports whether the host of a host:port address is
// "localhost" or a loopback IP. An empty host means every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
