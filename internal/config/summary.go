package config

import (
	"fmt"
	"strings"
)

// Summary describes in a few lines per site what the config serves and
// manages: listen addresses, the CA and account, each site's names, how
// it gets its certificate (ACME with challenge and key types, or files),
// what it serves, and its routes. It is what `tlspilot check` prints.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s\n", c.File)
	if len(c.Sites) > 0 {
		fmt.Fprintf(&b, "listen: http %s, https %s\n", c.HTTPListen, c.HTTPSListen)
	}
	fmt.Fprintf(&b, "ca: %s%s\n", c.CA, c.accountSummary())
	fmt.Fprintf(&b, "storage: %s\n", or(c.Storage, "default (per-user data directory)"))
	if c.KEKFile != "" {
		fmt.Fprintf(&b, "key-encryption key: %s\n", c.KEKFile)
	}
	if c.User != "" || c.Group != "" {
		fmt.Fprintf(&b, "runs as: user %s, group %s after binding\n", or(c.User, "(unchanged)"), or(c.Group, "(unchanged)"))
	}
	if c.ChallengeDir != "" {
		fmt.Fprintf(&b, "http-01 answers also from files in %s\n", c.ChallengeDir)
	}
	if c.DNS != nil {
		fmt.Fprintf(&b, "dns-01: %s\n", c.DNS.summary())
	}
	if c.IsIssuer() {
		fmt.Fprintf(&b, "fleet issuer: API on %s for %s (tlspilot issuer)\n", c.IssuerListen, strings.Join(c.IssuerNames, ", "))
	}
	acme := 0
	for i, s := range c.Sites {
		if s.CertFile == "" {
			acme += len(s.Names)
		}
		s.summary(&b, i+1)
	}
	switch len(c.Sites) {
	case 0:
		if len(c.Certificates) == 0 && !c.IsIssuer() {
			b.WriteString("no [[site]]: serve would serve no site and manage no certificate\n")
		} else {
			b.WriteString("no [[site]] for serve\n")
		}
	case 1:
		fmt.Fprintf(&b, "1 site, %s with certificates from the CA\n", plural(acme, "name"))
	default:
		fmt.Fprintf(&b, "%d sites, %s with certificates from the CA\n", len(c.Sites), plural(acme, "name"))
	}
	for i, ct := range c.Certificates {
		fmt.Fprintf(&b, "certificate[%d] line %d: %s (%s, %s) for tlspilot certs\n", i+1, ct.Line,
			strings.Join(ct.Names, ", "), ct.Challenge, strings.Join(ct.KeyTypes, "+"))
	}
	return b.String()
}

func (c *Config) accountSummary() string {
	var parts []string
	if c.Email != "" {
		parts = append(parts, "account "+c.Email)
	}
	if c.AgreeTerms {
		parts = append(parts, "terms agreed")
	}
	if c.EABKeyID != "" {
		parts = append(parts, "EAB key "+c.EABKeyID)
	}
	if c.Profile != "" {
		parts = append(parts, "profile "+c.Profile)
	}
	if c.KeepDeactivatedAccount {
		parts = append(parts, "never replaced if deactivated")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (d *DNS) summary() string {
	if d.Provider == ProviderExec {
		return fmt.Sprintf("exec %s", d.Command)
	}
	s := fmt.Sprintf("rfc2136 updates to %s, key %s (%s)", d.Server, d.TSIGKey, d.TSIGAlgorithm)
	if d.Zone != "" {
		s += ", zone " + d.Zone
	}
	return s
}

func (s *Site) summary(b *strings.Builder, n int) {
	fmt.Fprintf(b, "site[%d] line %d: %s", n, s.Line, strings.Join(s.Names, ", "))
	if s.Default {
		b.WriteString(" (default site)")
	}
	b.WriteString("\n")
	if s.CertFile != "" {
		fmt.Fprintf(b, "  certificate: files %s, %s\n", s.CertFile, s.KeyFile)
		if s.CertFilesMissing {
			b.WriteString("  (not there yet: serve presents a temporary self-signed certificate until both files exist)\n")
		}
	} else {
		fmt.Fprintf(b, "  certificate: ACME %s, %s\n", s.Challenge, strings.Join(s.KeyTypes, " + "))
	}
	if how := serves(s.Root, s.Proxy, s.Redirect); how != "" {
		fmt.Fprintf(b, "  serves: %s\n", how)
	} else if len(s.Routes) > 0 {
		b.WriteString("  serves: 404 outside its routes\n")
	} else {
		b.WriteString("  serves: 404 (no root, proxy, redirect or route)\n")
	}
	for _, r := range s.Routes { // a route always has one way to serve
		fmt.Fprintf(b, "  route %s: %s\n", r.Path, serves(r.Root, r.Proxy, r.Redirect))
	}
	if s.ClientAuth != nil {
		fmt.Fprintf(b, "  client certificates: %s\n", s.ClientAuth.summary())
	}
	var extras []string
	if s.HTTPRedirect {
		extras = append(extras, "http redirects to https")
	} else {
		extras = append(extras, "also served over http")
	}
	if s.HSTS {
		extras = append(extras, "hsts")
	}
	if s.CSP != "" {
		extras = append(extras, "csp")
	}
	if len(s.Headers) > 0 {
		extras = append(extras, fmt.Sprintf("%d extra headers", len(s.Headers)))
	}
	fmt.Fprintf(b, "  %s\n", strings.Join(extras, ", "))
}

func serves(root string, proxy []string, redirect string) string {
	switch {
	case root != "":
		return "static files from " + root
	case len(proxy) > 0:
		return "proxy to " + strings.Join(proxy, ", ")
	case redirect != "":
		return "redirect to " + redirect
	}
	return ""
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// plural is "1 name", "2 names".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
