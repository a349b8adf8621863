package config

import (
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// Defaults of the top-level keys.
const (
	DefaultHTTPListen  = ":80"
	DefaultHTTPSListen = ":443"
	DefaultKeyType     = "ecdsa-p256"
	DefaultAccessLog   = "stdout"
	DefaultLogLevel    = "info"
	DefaultTLSProfile  = "intermediate"
)

// config decodes the top-level table, then the sites, then the checks
// that span sites.
func (d *decoder) config(doc map[string]any) *Config {
	c := &Config{
		File:        d.file,
		CA:          tlspilot.LetsEncrypt,
		HTTPListen:  DefaultHTTPListen,
		HTTPSListen: DefaultHTTPSListen,
		AccessLog:   DefaultAccessLog,
		LogLevel:    DefaultLogLevel,
		KeyTypes:    []string{DefaultKeyType},
		Challenge:   tlspilot.HTTP01,
		TLSProfile:  DefaultTLSProfile,
	}
	t := d.table("", doc)
	d.account(t, c)
	d.process(t, c)
	d.admin(t, c)
	d.notify(t, c)
	d.warnWindow(t, c)
	d.issuer(t, c)
	if paths, ok := t.strings("key_type", &c.KeyTypes); ok {
		c.KeyTypes = d.keyTypes(t.key("key_type"), paths, c.KeyTypes)
	}
	if t.str("challenge", &c.Challenge) {
		d.challenge(t.key("challenge"), &c.Challenge)
	}
	if dt := t.sub("dns"); dt != nil {
		c.DNS = d.dns(dt)
	}
	if t.str("tls_profile", &c.TLSProfile) {
		d.tlsProfile(t.key("tls_profile"), c.TLSProfile)
	}
	t.integer("max_connections", &c.MaxConnections)
	if c.MaxConnections < 0 {
		d.errorf("max_connections", "%d: want a positive number of connections (or leave it out for the default)", c.MaxConnections)
	}
	for _, st := range t.tables("site") {
		c.Sites = append(c.Sites, d.site(st, c))
	}
	written := map[string]string{}
	for _, ct := range t.tables("certificate") {
		c.Certificates = append(c.Certificates, d.certificate(ct, c, written))
	}
	t.done()
	certsAdminDefault(c)
	d.listenerClashes(c)
	if c.Challenge == tlspilot.DNS01 && c.DNS == nil {
		d.errorf("challenge", "dns-01 needs a [dns] table")
	}
	return c
}

// account decodes the keys about the CA and the ACME account.
func (d *decoder) account(t *table, c *Config) {
	if t.str("email", &c.Email) {
		d.email("email", c.Email)
	}
	if t.str("ca", &c.CA) {
		c.CA = d.ca("ca", c.CA)
	}
	paths, _ := t.strings("ca_root", &c.CARoots)
	for i, p := range paths {
		c.CARoots[i] = d.pemFile(p, c.CARoots[i])
	}
	t.flag("agree_terms", &c.AgreeTerms)
	t.flag("keep_deactivated_account", &c.KeepDeactivatedAccount)
	t.str("profile", &c.Profile)
	t.str("eab_key_id", &c.EABKeyID)
	if t.str("eab_hmac_file", &c.EABHMACFile) {
		n := len(d.errs)
		c.EABHMACFile = d.readableFile(t.key("eab_hmac_file"), c.EABHMACFile)
		if len(d.errs) == n {
			d.eabKey(t.key("eab_hmac_file"), c.EABHMACFile)
		}
	}
	if (c.EABKeyID == "") != (c.EABHMACFile == "") {
		d.errorf("eab_key_id", "eab_key_id and eab_hmac_file go together")
	}
	if t.str("storage", &c.Storage) {
		c.Storage = d.storage("storage", c.Storage)
	}
	if t.str("kek_file", &c.KEKFile) {
		c.KEKFile = d.kekFile("kek_file", c.KEKFile, c.StorageIsDatabase())
	}
	d.storageKEK(c)
}

// process decodes the keys about the serving process.
func (d *decoder) process(t *table, c *Config) {
	if t.str("http_listen", &c.HTTPListen) {
		d.listen("http_listen", c.HTTPListen)
	}
	if t.str("https_listen", &c.HTTPSListen) {
		d.listen("https_listen", c.HTTPSListen)
	}
	if t.str("user", &c.User) {
		d.user("user", c.User)
	}
	if t.str("group", &c.Group) {
		d.group("group", c.Group)
	}
	if t.str("challenge_dir", &c.ChallengeDir) {
		c.ChallengeDir = d.existingDir("challenge_dir", c.ChallengeDir)
	}
	if t.str("access_log", &c.AccessLog) {
		c.AccessLog = d.accessLog("access_log", c.AccessLog)
	}
	if t.str("log_level", &c.LogLevel) {
		switch c.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			d.errorf("log_level", "%q: want debug, info, warn or error", c.LogLevel)
		}
	}
	d.logging(t, c)
}

// keyTypes canonicalises key type names and rejects unknown ones and
// duplicates.
func (d *decoder) keyTypes(path string, paths, names []string) []string {
	if len(names) == 0 {
		d.errorf(path, "at least one key type is needed")
		return nil
	}
	out := make([]string, 0, len(names))
	for i, n := range names {
		kt, err := tlspilot.ParseKeyType(n)
		if err != nil {
			d.errorf(paths[i], "unknown key type %q (want ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096)", n)
			continue
		}
		if slices.Contains(out, string(kt)) {
			d.errorf(paths[i], "%s is listed twice", kt)
			continue
		}
		out = append(out, string(kt))
	}
	return out
}

// challenge canonicalises and checks a challenge type.
func (d *decoder) challenge(path string, ch *string) {
	*ch = strings.ToLower(strings.TrimSpace(*ch))
	switch *ch {
	case tlspilot.HTTP01, tlspilot.TLSALPN01, tlspilot.DNS01:
		return
	}
	d.errorf(path, "unknown challenge %q (want http-01, tls-alpn-01 or dns-01)", *ch)
}

// tlsProfile checks a TLS profile name.
func (d *decoder) tlsProfile(path, p string) {
	if _, err := tlsprofile.Parse(p); err != nil || p == "" {
		d.errorf(path, "%q: want \"intermediate\" (TLS 1.2 and 1.3) or \"modern\" (TLS 1.3 only)", p)
	}
}
