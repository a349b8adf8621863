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

// admin decodes "admin_listen" and "admin_allow_remote". The admin
// listener answers without authentication (status, metrics, profiles), so
// an address that is not loopback is refused unless admin_allow_remote
// says it is meant.
func (d *decoder) admin(t *table, c *Config) {
	c.AdminListen = DefaultAdminListen
	t.flag("admin_allow_remote", &c.AdminAllowRemote)
	if !t.str("admin_listen", &c.AdminListen) || c.AdminListen == AdminOff {
		return
	}
	n := len(d.errs)
	d.listen("admin_listen", c.AdminListen)
	if len(d.errs) > n || c.AdminAllowRemote || isLoopback(c.AdminListen) {
		return
	}
	d.errorf("admin_listen", "%q is not a loopback address, and the admin listener answers anyone who reaches it "+
		"(status, metrics, profiles) without authentication: listen on 127.0.0.1 or [::1], "+
		"or set admin_allow_remote = true if that is meant (behind a firewall or a proxy that authenticates)", c.AdminListen)
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
