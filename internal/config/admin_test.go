package config

import (
	"strings"
	"testing"
)

// TestAdminListen checks admin_listen and admin_allow_remote: the
// loopback default, "off", accepted addresses, and every refusal with its
// file:line: key.
func TestAdminListen(t *testing.T) {
	f := newFixture(t)
	accepted := []struct {
		name, config, listen string
		remote               bool
	}{
		{"default", ``, DefaultAdminListen, false},
		{"off", `admin_listen = "off"`, AdminOff, false},
		{"loopback v4", `admin_listen = "127.0.0.2:9000"`, "127.0.0.2:9000", false},
		{"loopback v6", `admin_listen = "[::1]:9000"`, "[::1]:9000", false},
		{"localhost", `admin_listen = "localhost:9000"`, "localhost:9000", false},
		{"any port", `admin_listen = "127.0.0.1:0"`, "127.0.0.1:0", false},
		{"remote allowed", "admin_listen = \"0.0.0.0:2019\"\nadmin_allow_remote = true", "0.0.0.0:2019", true},
		{"every interface allowed", "admin_allow_remote = true\nadmin_listen = \":2019\"", ":2019", true},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			c := f.mustParse(t, tt.config)
			if c.AdminListen != tt.listen || c.AdminAllowRemote != tt.remote {
				t.Errorf("AdminListen %q, AdminAllowRemote %v; want %q, %v", c.AdminListen, c.AdminAllowRemote, tt.listen, tt.remote)
			}
		})
	}
	refused := []struct{ name, config, want string }{
		{"every interface", `admin_listen = ":2019"`,
			`tlspilot.toml:1: admin_listen: ":2019" is not a loopback address`},
		{"public address", "email = \"ops@example.com\"\nadmin_listen = \"192.0.2.1:2019\"",
			`tlspilot.toml:2: admin_listen: "192.0.2.1:2019" is not a loopback address`},
		{"host name", `admin_listen = "admin.example.com:2019"`,
			`tlspilot.toml:1: admin_listen: "admin.example.com:2019" is not a loopback address`},
		{"remote not allowed", "admin_listen = \"0.0.0.0:2019\"\nadmin_allow_remote = false",
			`set admin_allow_remote = true`},
		{"no port", `admin_listen = "127.0.0.1"`, `tlspilot.toml:1: admin_listen: "127.0.0.1": want host:port`},
		{"bad port", `admin_listen = "127.0.0.1:http"`, `tlspilot.toml:1: admin_listen: "127.0.0.1:http": port "http" is not a number`},
		{"empty", `admin_listen = ""`, `tlspilot.toml:1: admin_listen: "": want host:port`},
		{"not a string", `admin_listen = 2019`, `tlspilot.toml:1: admin_listen: want a string, not an integer`},
		{"not a bool", `admin_allow_remote = "yes"`, `tlspilot.toml:1: admin_allow_remote: want true or false, not a string`},
		{"misspelt", `admin_listn = "127.0.0.1:2019"`, `tlspilot.toml:1: admin_listn: unknown key (did you mean "admin_listen"?)`},
		{"admin_hosts with a port", `admin_hosts = ["status.example.com:443"]`, `tlspilot.toml:1: admin_hosts[1]: "status.example.com:443" is not a host name`},
		{"admin_hosts with a scheme", "admin_hosts = [\"ok.example.com\", \"https://status.example.com\"]", `admin_hosts[2]: "https://status.example.com" is not a host name`},
	}
	if c := f.mustParse(t, `admin_hosts = ["status.example.com"]`); len(c.AdminHosts) != 1 || c.AdminHosts[0] != "status.example.com" {
		t.Errorf("admin_hosts: %q", c.AdminHosts)
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestAdminListenBindError checks that a problem found when binding is
// reported at the line of admin_listen, or without a line for the
// default.
func TestAdminListenBindError(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, "email = \"ops@example.com\"\nadmin_listen = \"127.0.0.1:9\"\n")
	if got, want := c.Errorf("admin_listen", "busy").Error(), c.File+":2: admin_listen: busy"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c = f.mustParse(t, "")
	if got, want := c.Errorf("admin_listen", "busy").Error(), c.File+": admin_listen: busy"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestCertsAdminListen checks certs_admin_listen: admin_listen for a
// file with no sites (only certs runs from it), off when serve runs from
// the same file, an address of its own, and the loopback rule.
func TestCertsAdminListen(t *testing.T) {
	f := newFixture(t)
	site := "\n[[site]]\nnames = \"example.com\"\n"
	accepted := []struct{ name, config, want string }{
		{"no sites: admin_listen", ``, DefaultAdminListen},
		{"no sites: admin_listen written", `admin_listen = "127.0.0.1:9100"`, "127.0.0.1:9100"},
		{"no sites: admin off", `admin_listen = "off"`, AdminOff},
		{"sites: off", site, AdminOff},
		{"sites: its own", `certs_admin_listen = "127.0.0.1:2020"` + site, "127.0.0.1:2020"},
		{"remote allowed", "admin_allow_remote = true\ncerts_admin_listen = \"0.0.0.0:2020\"", "0.0.0.0:2020"},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if c := f.mustParse(t, tt.config); c.CertsAdminListen != tt.want {
				t.Errorf("CertsAdminListen %q, want %q", c.CertsAdminListen, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, config, want string }{
		{"public address", "email = \"ops@example.com\"\ncerts_admin_listen = \"192.0.2.1:2020\"",
			`tlspilot.toml:2: certs_admin_listen: "192.0.2.1:2020" is not a loopback address`},
		{"no port", `certs_admin_listen = "127.0.0.1"`, `tlspilot.toml:1: certs_admin_listen: "127.0.0.1": want host:port`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}
