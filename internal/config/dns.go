package config

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/miekg/dns"

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
		c.Server = d.dnsServer(t.key("server"), c.Server)
	}
	if t.str("tsig_key", &c.TSIGKey) {
		d.tsigKey(t.key("tsig_key"), c.TSIGKey)
	}
	if t.str("tsig_algorithm", &c.TSIGAlgorithm) {
		c.TSIGAlgorithm = strings.ToLower(c.TSIGAlgorithm)
		if c.TSIGAlgorithm != HMACSHA256 && c.TSIGAlgorithm != HMACSHA512 {
			d.errorf(t.key("tsig_algorithm"), "%q: want %s or %s", c.TSIGAlgorithm, HMACSHA256, HMACSHA512)
		}
	}
	if t.str("tsig_secret_file", &c.TSIGSecretFile) {
		d.tsigSecretFile(t.key("tsig_secret_file"), c)
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
	if t.str("command", &c.Command) {
		c.Command = d.dnsCommand(t.key("command"), c.Command)
	}
	t.duration("timeout", &c.Timeout)
	paths, _ := t.strings("resolvers", &c.Resolvers)
	for i, p := range paths {
		c.Resolvers[i] = d.dnsServer(p, c.Resolvers[i])
	}
	t.integer("authoritative_port", &c.AuthoritativePort)
	if _, ok := t.m["authoritative_port"]; ok && (c.AuthoritativePort < 1 || c.AuthoritativePort > 65535) {
		d.errorf(t.key("authoritative_port"), "%d: want a port from 1 to 65535", c.AuthoritativePort)
	}
	t.duration("propagation_timeout", &c.PropagationTimeout)
	set["tsig_secret"] = d.inlineSecret(t)
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
		case !set["tsig_secret_file"] && !set["tsig_secret_env"] && !set["tsig_secret"]:
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
// and that nobody but its owner may read or write it.
func (d *decoder) secretFile(path, p string) string {
	before := len(d.errs)
	p = d.readableFile(path, p)
	if len(d.errs) > before {
		return p
	}
	fi, err := os.Stat(p)
	if err != nil {
		return p
	}
	switch perm := fi.Mode().Perm(); {
	case perm&0o044 != 0:
		d.errorf(path, "%s is readable by group or others (want mode 0600 or 0400): it is %04o; run chmod 0600 %s", p, perm, p)
	case perm&0o022 != 0:
		// As ssh refuses a private key file others may replace: whoever
		// writes it chooses the secret tlspilot uses.
		d.errorf(path, "%s is writable by group or others (want mode 0600 or 0400): it is %04o; run chmod 0600 %s", p, perm, p)
	}
	return p
}

// tsigSecretFile resolves and checks c's TSIG secret file, at path, as
// secretFile does, and reads it as the rfc2136 provider will (base64,
// alone or as BIND key clauses, the one named tsig_key), so that check,
// init and the daemons refuse the same files, at this line. A key
// clause's algorithm becomes c's when tsig_algorithm is not set.
func (d *decoder) tsigSecretFile(path string, c *DNS) {
	before := len(d.errs)
	c.TSIGSecretFile = d.secretFile(path, c.TSIGSecretFile)
	if len(d.errs) > before {
		return
	}
	k, err := dns01.ReadKey(c.TSIGSecretFile, c.TSIGKey, c.TSIGAlgorithm)
	if err != nil {
		d.errorf(path, "%v", err)
		return
	}
	if c.TSIGAlgorithm == "" {
		c.TSIGAlgorithm = k.Algorithm
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

// dnsServer checks a server address, written as host, host:port, an IP
// address alone (IPv6 with or without brackets) or [IPv6]:port, and
// returns it as host:port, port 53 when none is given.
func (d *decoder) dnsServer(path, v string) string {
	if v == "" {
		d.errorf(path, "empty address: want host or host:port, such as \"127.0.0.1:53\" or \"[::1]\"")
		return v
	}
	if inner, ok := strings.CutPrefix(v, "["); ok {
		ip, rest, _ := strings.Cut(inner, "]")
		if net.ParseIP(ip) == nil {
			d.errorf(path, "%q: brackets are for an IPv6 address, such as \"[::1]\" or \"[::1]:53\"", v)
			return v
		}
		if rest == "" {
			v = ip // "[::1]": port 53, as for "::1"
		}
	}
	return d.hostPort(path, v, "53")
}

// tsigKey checks a TSIG key name as the rfc2136 provider will use it: not
// empty, and a domain name that fits a DNS message (no empty label, labels
// of at most 63 bytes), else every update would fail with "bad rdata".
func (d *decoder) tsigKey(path, k string) {
	if k == "" {
		d.errorf(path, "empty key name: want the name of the TSIG key as the server knows it, such as \"tlspilot.\"")
		return
	}
	if _, ok := dns.IsDomainName(k); !ok {
		d.errorf(path, "%q is not a valid key name: want a domain name such as \"tlspilot.\" (labels of 1 to 63 characters between single dots)", k)
	}
}

// dnsCommand checks the exec provider's program as notifyCommand checks
// notify_command's, and as the provider will at start: a path containing
// a slash, resolved against the config's directory, is an executable
// file; a bare name is found in PATH now. It returns the program,
// resolved.
func (d *decoder) dnsCommand(path, prog string) string {
	if prog == "" {
		d.errorf(path, "empty program name")
		return prog
	}
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			d.errorf(path, "%q is not found in PATH%s", prog, noArgsHint(prog))
		}
		return prog
	}
	p := d.resolve(prog)
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(path, "%s does not exist%s%s", p, d.unexpanded(p), noArgsHint(prog))
	case err != nil:
		d.errorf(path, "%w", err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		d.errorf(path, "%s is not an executable file", p)
	}
	return p
}

// noArgsHint explains, for a command with blanks that names no program,
// that arguments cannot be written there, as certbot's hooks allow.
func noArgsHint(prog string) string {
	if !strings.ContainsAny(prog, " \t") {
		return ""
	}
	return " (it is run without a shell, as COMMAND present|cleanup FQDN VALUE, and takes no arguments of its own: " +
		"give the program's path alone, and put other arguments in a wrapper script)"
}

// inlineSecret refuses a TSIG secret written in the config itself, as
// certbot's dns_rfc2136_secret is, pointing at the two ways tlspilot
// takes one; the value is never quoted. It reports whether one was.
func (d *decoder) inlineSecret(t *table) bool {
	found := false
	for _, k := range []string{"tsig_secret", "secret"} {
		if _, ok := t.get(k); ok {
			d.errorf(t.key(k), "unknown key (did you mean \"tsig_secret_file\" or \"tsig_secret_env\"?): the secret is not written here; "+
				"put it in a file only its owner can read, named by tsig_secret_file, or in an environment variable named by tsig_secret_env")
			found = true
		}
	}
	return found
}
