package config

import (
	"net"
	"os"
	"strings"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
)

// The dns-01 providers and TSIG algorithms accepted in [dns].
const (
	ProviderRFC2136 = "rfc2136"
	ProviderExec    = "exec"
	HMACSHA256      = "hmac-sha256"
	HMACSHA512      = "hmac-sha512"
)

// dns decodes the [dns] table.
func (d *decoder) dns(t *table) *DNS {
	c := &DNS{}
	t.str("provider", &c.Provider)
	set := map[string]bool{}
	for _, k := range []string{"server", "tsig_key", "tsig_algorithm", "tsig_secret_file", "tsig_secret_env", "command", "timeout"} {
		_, set[k] = t.m[k]
	}
	if t.str("server", &c.Server) {
		c.Server = d.hostPort(t.key("server"), c.Server, "53")
	}
	t.str("tsig_key", &c.TSIGKey)
	if t.str("tsig_algorithm", &c.TSIGAlgorithm) {
		c.TSIGAlgorithm = strings.ToLower(c.TSIGAlgorithm)
		if c.TSIGAlgorithm != HMACSHA256 && c.TSIGAlgorithm != HMACSHA512 {
			d.errorf(t.key("tsig_algorithm"), "%q: want %s or %s", c.TSIGAlgorithm, HMACSHA256, HMACSHA512)
		}
	}
	if t.str("tsig_secret_file", &c.TSIGSecretFile) {
		d.tsigSecretFile(t.key("tsig_secret_file"), &c.TSIGSecretFile)
	}
	if t.str("tsig_secret_env", &c.TSIGSecretEnv) {
		if os.Getenv(c.TSIGSecretEnv) == "" {
			d.errorf(t.key("tsig_secret_env"), "environment variable %q is not set", c.TSIGSecretEnv)
		} else if _, err := dns01.SecretFromEnv(c.TSIGSecretEnv); err != nil {
			d.errorf(t.key("tsig_secret_env"), "%v", err)
		}
	}
	if t.str("zone", &c.Zone) {
		d.zone(t.key("zone"), &c.Zone)
	}
	if t.str("command", &c.Command) && strings.Contains(c.Command, "/") {
		c.Command = d.resolve(c.Command)
	}
	t.duration("timeout", &c.Timeout)
	paths, _ := t.strings("resolvers", &c.Resolvers)
	for i, p := range paths {
		c.Resolvers[i] = d.hostPort(p, c.Resolvers[i], "53")
	}
	t.integer("authoritative_port", &c.AuthoritativePort)
	if _, ok := t.m["authoritative_port"]; ok && (c.AuthoritativePort < 1 || c.AuthoritativePort > 65535) {
		d.errorf(t.key("authoritative_port"), "%d: want a port from 1 to 65535", c.AuthoritativePort)
	}
	t.duration("propagation_timeout", &c.PropagationTimeout)
	t.done()
	d.provider(t, c, set)
	return c
}

// provider checks the keys each provider needs and refuses those it
// would ignore.
func (d *decoder) provider(t *table, c *DNS, set map[string]bool) {
	var need, unused []string
	switch c.Provider {
	case ProviderRFC2136:
		need, unused = []string{"server", "tsig_key"}, []string{"command", "timeout"}
		if c.TSIGAlgorithm == "" {
			c.TSIGAlgorithm = HMACSHA256
		}
		switch {
		case set["tsig_secret_file"] && set["tsig_secret_env"]:
			d.errorf(t.key("tsig_secret_env"), "give tsig_secret_file or tsig_secret_env, not both")
		case !set["tsig_secret_file"] && !set["tsig_secret_env"]:
			d.errorf(t.key("tsig_secret_file"), "required by the %s provider (or tsig_secret_env)", c.Provider)
		}
	case ProviderExec:
		need, unused = []string{"command"}, []string{"server", "tsig_key", "tsig_algorithm", "tsig_secret_file", "tsig_secret_env"}
	case "":
		d.errorf(t.key("provider"), "required: %s or %s", ProviderRFC2136, ProviderExec)
		return
	default:
		d.errorf(t.key("provider"), "unknown provider %q (want %s or %s)", c.Provider, ProviderRFC2136, ProviderExec)
		return
	}
	for _, k := range need {
		if !set[k] {
			d.errorf(t.key(k), "required by the %s provider", c.Provider)
		}
	}
	for _, k := range unused {
		if set[k] {
			d.errorf(t.key(k), "not used by the %s provider", c.Provider)
		}
	}
}

// secretFile resolves p and checks that it is readable by this process
// and by nobody but its owner.
func (d *decoder) secretFile(path, p string) string {
	before := len(d.errs)
	p = d.readableFile(path, p)
	if len(d.errs) > before {
		return p
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o044 != 0 {
		d.errorf(path, "%s is readable by group or others (want mode 0600 or 0400)", p)
	}
	return p
}

// tsigSecretFile resolves and checks the TSIG secret file at path as
// secretFile does, and reads it as the rfc2136 provider will (base64,
// alone or as a BIND key clause), so that check, init and the daemons
// refuse the same files, at this line.
func (d *decoder) tsigSecretFile(path string, p *string) {
	before := len(d.errs)
	*p = d.secretFile(path, *p)
	if len(d.errs) > before {
		return
	}
	if _, err := dns01.ReadSecret(*p); err != nil {
		d.errorf(path, "%v", err)
	}
}

// zone normalises a zone name.
func (d *decoder) zone(path string, z *string) {
	n, err := tlspilot.NormalizeName(*z)
	if err != nil || strings.HasPrefix(n, "*.") || net.ParseIP(n) != nil {
		d.errorf(path, "%q is not a zone name", *z)
		return
	}
	*z = n
}
