package config

import (
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot"
)

// IsIssuer reports whether the config makes this host a fleet issuer
// (issuer_listen is set): tlspilot init then makes the fleet CA.
func (c *Config) IsIssuer() bool { return c.IssuerListen != "" }

// issuer decodes "issuer_listen" and "issuer_names", which go together:
// where the issuer's API listens, and the names (or addresses) agents
// reach it by, which its server certificate covers.
func (d *decoder) issuer(t *table, c *Config) {
	if t.str("issuer_listen", &c.IssuerListen) {
		d.listen("issuer_listen", c.IssuerListen)
	}
	paths, hasNames := t.strings("issuer_names", &c.IssuerNames)
	if hasNames && len(c.IssuerNames) == 0 {
		d.errorf("issuer_names", "at least one name is needed")
	}
	if hasNames {
		c.IssuerNames = d.issuerNames(paths, c.IssuerNames)
	}
	_, namesWritten := t.m["issuer_names"]
	switch {
	case c.IssuerListen != "" && !namesWritten:
		d.errorf("issuer_listen", "needs issuer_names: the names or addresses agents reach the issuer by (its certificate covers them)")
	case namesWritten && c.IssuerListen == "":
		d.errorf("issuer_names", "needs issuer_listen: the address the issuer's API listens on")
	}
}

// issuerNames normalises the issuer's names: DNS names or IP addresses,
// no wildcard, none twice.
func (d *decoder) issuerNames(paths, names []string) []string {
	var out []string
	for i, n := range names {
		if strings.HasPrefix(strings.TrimSpace(n), "*.") {
			d.errorf(paths[i], "%q: the issuer's certificate names the issuer itself, not a wildcard", n)
			continue
		}
		if err := nameMistake(n); err != nil {
			d.errorf(paths[i], "%w", err)
			continue
		}
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			d.errorf(paths[i], "%w", err)
			continue
		}
		if slices.Contains(out, nn) {
			d.errorf(paths[i], "%q is listed twice", nn)
			continue
		}
		out = append(out, nn)
	}
	return out
}
