package config

import (
	"fmt"
	"net/url"
	"os"

	"github.com/pelletier/go-toml/v2"
	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/renewal"
)

// Agent is a fleet agent's config file (AGENT.toml): where its issuer is,
// the fleet CA it trusts for it, its storage, and the certificates it
// keeps, with the deploy keys of `tlspilot certs`.
type Agent struct {
	// File is the path the config was read from.
	File string
	// Issuer is the issuer's base URL ("issuer"), https.
	Issuer string
	// IssuerCA is the fleet CA certificate file ("issuer_ca", PEM,
	// absolute): the only root trusted for the issuer.
	IssuerCA string
	// Storage is the agent's storage directory ("storage", absolute,
	// required): its key, client certificate and certificates, sealed
	// under the key-encryption key Storage/kek.
	Storage string
	// Certificates are the [[certificate]] tables in file order. Their
	// Challenge is dns-01 (the issuer's); KeyTypes holds one type.
	Certificates []AgentCertificate
	// WarnWindow is when status reports a certificate whose renewal
	// keeps failing as expiring ("warn_window", as serve's; 10% of the
	// lifetime by default).
	WarnWindow renewal.WarnWindow

	pos *positions
}

// AgentCertificate is one [[certificate]] of an agent's config.
type AgentCertificate struct {
	Certificate
	// ReuseKey keeps the certificate's key across renewals ("reuse_key",
	// for pinned deployments); by default each renewal makes a new one.
	ReuseKey bool
}

// Errorf returns an *Error at key, as Config.Errorf does.
func (a *Agent) Errorf(key, format string, args ...any) *Error {
	line := 0
	if a.pos != nil {
		line = a.pos.line(key)
	}
	return &Error{File: a.File, Line: line, Key: key, Err: fmt.Errorf(format, args...)}
}

// LoadAgent reads, parses and checks an agent's config file. The error
// is an ErrorList when the file was read but rejected.
func LoadAgent(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseAgent(path, data)
}

// ParseAgent parses and checks data, read from the file called name,
// as Parse does for the main config.
func ParseAgent(name string, data []byte) (*Agent, error) {
	d, doc, err := newDecoder(name, data)
	if err != nil {
		return nil, err
	}
	a := d.agent(d.table("", doc))
	a.File, a.pos = name, d.pos
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return a, nil
}

// agent decodes the top-level table of an agent's config.
func (d *decoder) agent(t *table) *Agent {
	a := &Agent{}
	if !t.str("issuer", &a.Issuer) {
		d.errorf("issuer", "required: the issuer's URL, such as \"https://issuer.example.com:8443\"")
	} else if u, err := url.Parse(a.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		d.errorf("issuer", "%q: want an https:// URL with a host and no user, query or fragment", a.Issuer)
	} else {
		d.urlPort("issuer", a.Issuer, u)
	}
	if !t.str("issuer_ca", &a.IssuerCA) {
		d.errorf("issuer_ca", "required: the fleet CA certificate (PEM) that `tlspilot issuer ca` prints on the issuer")
	} else {
		a.IssuerCA = d.pemFile("issuer_ca", a.IssuerCA)
	}
	if !t.str("storage", &a.Storage) {
		d.errorf("storage", "required: the agent's storage directory, such as \"/var/lib/tlspilot-agent\"")
	} else if IsDatabaseURL(a.Storage) {
		d.errorf("storage", "an agent keeps its keys in a directory, not a database")
	} else {
		a.Storage = d.storage("storage", a.Storage)
	}
	a.WarnWindow = d.warnWindowKey(t)
	written := map[string]string{}
	for _, ct := range t.tables("certificate") {
		a.Certificates = append(a.Certificates, d.agentCertificate(ct, written))
	}
	t.done()
	return a
}

// agentCertificate decodes one [[certificate]] of an agent: names, its
// key type, reuse_key and the deploy keys of `tlspilot certs`.
func (d *decoder) agentCertificate(t *table, written map[string]string) AgentCertificate {
	c := AgentCertificate{Certificate: Certificate{Line: d.pos.line(t.path), Challenge: tlspilot.DNS01, KeyTypes: []string{DefaultKeyType}}}
	site := Site{Challenge: tlspilot.DNS01}
	var namePaths []string
	if _, present := t.m["names"]; present {
		namePaths = d.siteNames(t, &site)
	} else {
		d.errorf(t.key("names"), "required: the names this certificate covers (within the agent's policy on the issuer)")
	}
	c.Names = site.Names
	var kt string
	if t.str("key_type", &kt) {
		c.KeyTypes = d.keyTypes(t.key("key_type"), []string{t.key("key_type")}, []string{kt})
	}
	t.flag("reuse_key", &c.ReuseKey)
	d.deployFiles(t, &c.Certificate, written)
	d.deployAccess(t, &c.Certificate)
	d.reload(t, &c.Certificate)
	t.done()
	d.claim(t.path, namePaths, &site)
	return c
}

// IsAgentFile reports whether the file at path is an agent's config (a
// TOML document with a top-level "issuer" key), so that commands shared
// by both kinds (status) can tell them apart before loading one. An
// unreadable or malformed file is not.
func IsAgentFile(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var doc map[string]any
	if toml.Unmarshal(withoutBOM(data), &doc) != nil {
		return false
	}
	_, ok := doc["issuer"]
	return ok
}
