package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"unicode"

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
// path or with a port, or as several names in one string, or returns
// nil.
func nameMistake(n string) error {
	switch {
	case len(severalNames(n)) > 1:
		return fmt.Errorf("%q: one name per element of the list, such as [%q, ...]", n, severalNames(n)[0])
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

// severalNames splits n at commas and blanks when every part is a
// domain name with a dot ("example.com, www.example.com"), and returns
// nil otherwise ("exa mple.com").
func severalNames(n string) []string {
	f := strings.FieldsFunc(n, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	for _, p := range f {
		if !strings.Contains(strings.Trim(p, "."), ".") {
			return nil
		}
	}
	return f
}

// reservedTLDs are top-level domains reserved for testing, examples,
// local or private use, under which no public CA may issue (CA/Browser
// Forum Baseline Requirements: no internal names): RFC 2606 and 6761
// (test, example, invalid, localhost), RFC 6762 (local), RFC 7686
// (onion), RFC 9476 (alt), ICANN's 2024 resolution (internal), and
// RFC 8375's home.arpa, matched as a suffix below.
var reservedTLDs = map[string]bool{
	"test": true, "example": true, "invalid": true, "localhost": true,
	"local": true, "onion": true, "alt": true, "internal": true,
}

// PublicCAWarnings returns, when the CA is Let's Encrypt, one line per
// name of a site or [[certificate]] that it will refuse to issue for: a
// name under a reserved top-level domain, or an IP address that is not
// public. Orders for them can only fail; serve still serves them, with a
// temporary certificate. Each line starts with the file, the line and
// the key of the names, then the name. It returns nil for any other CA,
// whose policy tlspilot does not know (a private CA may well issue for
// such names).
func (c *Config) PublicCAWarnings() []string {
	if c.CA != tlspilot.LetsEncrypt && c.CA != tlspilot.LetsEncryptStaging {
		return nil
	}
	var out []string
	check := func(key string, names []string) {
		for _, n := range names {
			if why := unissuable(n); why != "" {
				out = append(out, c.Errorf(key, "%s: Let's Encrypt does not issue for %s; use a name in public DNS, or a CA of your own (ca = \"https://…\")", n, why).Error())
			}
		}
	}
	for i, s := range c.Sites {
		if s.CertFile == "" {
			check(fmt.Sprintf("site[%d].names", i+1), s.Names)
		}
	}
	for i, ct := range c.Certificates {
		check(fmt.Sprintf("certificate[%d].names", i+1), ct.Names)
	}
	return out
}

// ReloadWarnings returns a line for each [[certificate]] whose reload
// command names a program this process cannot find or run now
// (exec.LookPath, with this process's PATH), starting with the file, the
// line and the key: the reload after each deploy would fail, and the
// software keep serving the old files. A warning rather than an error,
// since the program may be installed after the config is written.
func (c *Config) ReloadWarnings() []string {
	var out []string
	for i, ct := range c.Certificates {
		if w := reloadWarning(ct.Reload); w != "" {
			out = append(out, c.Errorf(fmt.Sprintf("certificate[%d].reload", i+1), "%s", w).Error())
		}
	}
	return out
}

// ReloadWarnings is Config.ReloadWarnings for an agent's certificates.
func (a *Agent) ReloadWarnings() []string {
	var out []string
	for i, ct := range a.Certificates {
		if w := reloadWarning(ct.Reload); w != "" {
			out = append(out, a.Errorf(fmt.Sprintf("certificate[%d].reload", i+1), "%s", w).Error())
		}
	}
	return out
}

// reloadWarning says why the program of argv cannot be run, or "".
func reloadWarning(argv []string) string {
	if len(argv) == 0 || argv[0] == "" {
		return ""
	}
	_, err := exec.LookPath(argv[0])
	var (
		ee *exec.Error
		pe *fs.PathError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, exec.ErrNotFound) && !strings.Contains(argv[0], "/"):
		return fmt.Sprintf("no program %q in PATH (%s): each reload after a deploy will fail until it is installed, or give its full path", argv[0], os.Getenv("PATH"))
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &ee):
		err = ee.Err
	}
	return fmt.Sprintf("program %s cannot be run (%v): each reload after a deploy will fail", argv[0], err)
}

// specialPurpose are the IANA special-purpose address blocks that are not
// globally reachable (RFC 6890 registries, for IPv4 and IPv6): private,
// shared (RFC 6598), loopback, link-local, documentation (RFC 5737,
// 3849, 9637), benchmarking (RFC 2544), reserved, multicast, unique
// local (RFC 4193), discard (RFC 6666), 6to4 and the IETF protocol block.
// Public CAs issue for none of them.
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/127", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
		"fc00::/7", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// unissuable says why no public CA issues for name, or returns "".
func unissuable(name string) string {
	if a, err := netip.ParseAddr(name); err == nil {
		a = a.Unmap()
		for _, p := range specialPurpose {
			if p.Contains(a) {
				return "an IP address that is not public (" + p.String() + ")"
			}
		}
		return ""
	}
	n := strings.TrimSuffix(strings.ToLower(name), ".")
	if n == "home.arpa" || strings.HasSuffix(n, ".home.arpa") {
		return "names under home.arpa (RFC 8375, for homes' own networks)"
	}
	tld := n[strings.LastIndexByte(n, '.')+1:]
	if reservedTLDs[tld] {
		return "names under ." + tld + " (a top-level domain reserved for testing or private use)"
	}
	return ""
}
