package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/tlspilot/tlspilot"
)

// CAShorthand returns the directory URL that a name "ca" accepts for a
// well-known CA stands for: "letsencrypt" and "letsencrypt-staging".
func CAShorthand(name string) (string, bool) {
	switch name {
	case "letsencrypt":
		return tlspilot.LetsEncrypt, true
	case "letsencrypt-staging":
		return tlspilot.LetsEncryptStaging, true
	}
	return "", false
}

// ca expands a shorthand and checks the directory URL.
func (d *decoder) ca(path, v string) string {
	if u, ok := CAShorthand(v); ok {
		return u
	}
	d.caURL(path, v)
	return v
}

// CheckTerms returns an error, at "agree_terms", when the config would use
// Let's Encrypt (the default CA) without agreeing to its terms of
// service: every order would then fail at the account while serve went
// on with temporary certificates. Parse leaves this to the commands that
// use the CA (check, serve), so a config read for other purposes (status)
// need not say it.
func (c *Config) CheckTerms() error {
	if c.AgreeTerms || (c.CA != tlspilot.LetsEncrypt && c.CA != tlspilot.LetsEncryptStaging) || !c.ordersCertificates() {
		return nil
	}
	key := "agree_terms"
	if c.pos != nil && c.pos.line(key) == 0 && c.pos.line("ca") > 0 {
		key = "ca" // say where Let's Encrypt was chosen
	}
	e := c.Errorf(key, "Let's Encrypt requires agreeing to its terms of service (https://letsencrypt.org/repository/): "+
		"read them, then set agree_terms = true")
	e.Key = "agree_terms"
	return e
}

// ordersCertificates reports whether anything in c is obtained from the
// CA: a [[certificate]], or a site without cert_file. A config whose sites
// all bring their own certificate files never talks to the CA.
func (c *Config) ordersCertificates() bool {
	if len(c.Certificates) > 0 {
		return true
	}
	for _, s := range c.Sites {
		if s.CertFile == "" {
			return true
		}
	}
	return false
}

// nameMistake says what is wrong with a name written as a URL, with a
// path or with a port, or returns nil.
func nameMistake(n string) error {
	switch {
	case strings.Contains(n, "://"):
		host := n
		if u, err := url.Parse(n); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		return fmt.Errorf("%q is a URL: write a name, not a URL, such as %q", n, host)
	case strings.Contains(n, "/"):
		return fmt.Errorf("%q is a name with a path: write a name, not a URL, such as %q", n, n[:strings.IndexByte(n, '/')])
	case strings.Contains(n, ":") && net.ParseIP(n) == nil:
		host, _, err := net.SplitHostPort(n)
		if err != nil {
			return nil // left to NormalizeName
		}
		return fmt.Errorf("%q is a name with a port: write the name alone, such as %q (the port is https_listen's)", n, host)
	}
	return nil
}
