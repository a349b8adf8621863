package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/clientauth"
	"golang.org/x/net/http/httpguts"
)

// Values and defaults of [site.client_auth].
const (
	ClientAuthRequire  = "require"
	ClientAuthOptional = "optional"

	RevocationOff   = "off"
	RevocationLeaf  = "leaf"
	RevocationChain = "chain"

	UnknownDeny  = "deny"
	UnknownAllow = "allow"

	// DefaultVerifyDepth allows a client certificate signed directly by
	// a CA of the ca file, as mod_ssl's SSLVerifyDepth and nginx's
	// ssl_verify_depth default to.
	DefaultVerifyDepth = 1
	// DefaultClientCertHeaderPrefix starts the names of the identity
	// headers sent upstream.
	DefaultClientCertHeaderPrefix = "X-Client-Cert-"
)

// ClientAuth is a site's [site.client_auth] table: the client
// certificates the site asks for, how they are checked, and what is
// passed upstream. Defaults are filled in.
type ClientAuth struct {
	// Line is where the table starts, for messages.
	Line int
	// CAFile is an absolute path to a file of one or more PEM CA
	// certificates that client certificates must chain to ("ca",
	// required).
	CAFile string
	// Mode is ClientAuthRequire (default: no handshake without a valid
	// certificate) or ClientAuthOptional (a certificate is verified when
	// given; RequirePaths then need one).
	Mode string
	// VerifyDepth is the most CA certificates allowed above the client
	// certificate in its verified chain, the trusted one from CAFile
	// included ("verify_depth", default DefaultVerifyDepth): 0 accepts
	// only certificates listed in CAFile themselves, 1 those signed by a
	// CA of CAFile, 2 adds one intermediate.
	VerifyDepth int
	// Revocation is RevocationOff, RevocationLeaf or RevocationChain
	// ("revocation"); default RevocationLeaf when a source of revocation
	// information (CRLFiles, CRLFetch, OCSP) is given, else RevocationOff.
	Revocation string
	// CRLFiles are absolute paths of PEM or DER CRLs, each parsed when
	// the config is loaded ("crl").
	CRLFiles []string
	// CRLFetch also fetches the http CRL distribution points named in
	// the certificates ("crl_fetch").
	CRLFetch bool
	// OCSP asks the responder named in the certificates' AIA ("ocsp").
	OCSP bool
	// OCSPResponder, when set, is asked instead of the certificates'
	// responder ("ocsp_responder": an http or https URL); it needs OCSP.
	OCSPResponder string
	// RevocationUnknown is UnknownDeny (default: hard fail) or
	// UnknownAllow (soft fail): what happens when no fresh CRL or OCSP
	// answer can be had ("revocation_unknown").
	RevocationUnknown string
	// HeaderPrefix starts the names of the identity headers sent to the
	// upstreams of the site ("header_prefix", default
	// DefaultClientCertHeaderPrefix); it ends with "-".
	HeaderPrefix string
	// RequirePaths are path prefixes that need a verified client
	// certificate in optional mode ("require_paths"); others get 403.
	// Empty in require mode, where every path needs one.
	RequirePaths []string
}

// clientAuth decodes [site.client_auth]; s is the site so far.
func (d *decoder) clientAuth(t *table, s *Site) *ClientAuth {
	c := &ClientAuth{Line: d.pos.line(t.path), Mode: ClientAuthRequire, VerifyDepth: DefaultVerifyDepth,
		RevocationUnknown: UnknownDeny, HeaderPrefix: DefaultClientCertHeaderPrefix}
	var cas []*x509.Certificate // nil unless the ca file is good
	if !t.str("ca", &c.CAFile) {
		if _, present := t.m["ca"]; !present {
			d.errorf(t.key("ca"), "required: a file of the PEM CA certificates client certificates must chain to")
		}
	} else {
		c.CAFile, cas = d.caFile(t.key("ca"), c.CAFile)
	}
	if t.str("mode", &c.Mode) && c.Mode != ClientAuthRequire && c.Mode != ClientAuthOptional {
		d.errorf(t.key("mode"), "%q: want \"require\" or \"optional\"", c.Mode)
	}
	t.integer("verify_depth", &c.VerifyDepth)
	if c.VerifyDepth < 0 || c.VerifyDepth > 9 {
		d.errorf(t.key("verify_depth"), "%d: want the number of CA certificates allowed above the client's, from 0 to 9", c.VerifyDepth)
	}
	d.revocation(t, c)
	if c.Revocation == RevocationChain && cas != nil {
		d.chainCAs(t.key("ca"), c.CAFile, cas)
	}
	if t.str("header_prefix", &c.HeaderPrefix) {
		d.headerPrefix(t.key("header_prefix"), c.HeaderPrefix)
	}
	d.requirePaths(t, c)
	if !s.HTTPRedirect {
		d.errorf(t.path, "client certificates need HTTPS: remove http_redirect = false (it would serve this site over plain HTTP too, without them)")
	}
	t.done()
	return c
}

// revocation decodes the revocation keys of [site.client_auth] and
// checks that they agree: a source of revocation information when the
// check is on, none when it is off.
func (d *decoder) revocation(t *table, c *ClientAuth) {
	if paths, ok := t.strings("crl", &c.CRLFiles); ok {
		for i, p := range paths {
			c.CRLFiles[i] = d.crlFile(p, c.CRLFiles[i])
		}
	}
	t.flag("crl_fetch", &c.CRLFetch)
	t.flag("ocsp", &c.OCSP)
	if t.str("ocsp_responder", &c.OCSPResponder) {
		u, err := url.Parse(c.OCSPResponder)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || u.Fragment != "":
			d.errorf(t.key("ocsp_responder"), "%q: want an http:// (or https://) URL of an OCSP responder", c.OCSPResponder)
		case !c.OCSP:
			d.errorf(t.key("ocsp_responder"), "used only with ocsp = true")
		default:
			d.urlPort(t.key("ocsp_responder"), c.OCSPResponder, u)
		}
	}
	sources := len(c.CRLFiles) > 0 || c.CRLFetch || c.OCSP
	if t.str("revocation_unknown", &c.RevocationUnknown) {
		switch {
		case c.RevocationUnknown != UnknownDeny && c.RevocationUnknown != UnknownAllow:
			d.errorf(t.key("revocation_unknown"), "%q: want \"deny\" (refuse the client) or \"allow\" (let it in) when no fresh answer can be had", c.RevocationUnknown)
		case !sources:
			d.errorf(t.key("revocation_unknown"), "used only with a source of revocation answers: crl files, crl_fetch = true or ocsp = true")
		}
	}
	if !t.str("revocation", &c.Revocation) {
		c.Revocation = map[bool]string{true: RevocationLeaf, false: RevocationOff}[sources]
		return
	}
	switch {
	case c.Revocation != RevocationOff && c.Revocation != RevocationLeaf && c.Revocation != RevocationChain:
		d.errorf(t.key("revocation"), "%q: want \"off\", \"leaf\" or \"chain\"", c.Revocation)
	case c.Revocation == RevocationOff && sources:
		d.errorf(t.key("revocation"), "\"off\", yet crl, crl_fetch or ocsp is given: remove them or check revocation (\"leaf\" or \"chain\")")
	case c.Revocation != RevocationOff && !sources:
		d.errorf(t.key("revocation"), "%q needs a source: crl files, crl_fetch = true or ocsp = true", c.Revocation)
	}
}

// crlFile resolves p and checks that it holds a CRL, PEM or DER.
func (d *decoder) crlFile(path, p string) string {
	p = d.readableFile(path, p)
	data, err := os.ReadFile(p)
	if err != nil {
		return p // reported by readableFile
	}
	if b, _ := pem.Decode(data); b != nil {
		crl := firstPEM(data, "X509 CRL") // other blocks are skipped, as serve does
		if crl == nil {
			d.errorf(path, "%s: a PEM %q block, want \"X509 CRL\"", p, b.Type)
			return p
		}
		data = crl.Bytes
	}
	if _, err := x509.ParseRevocationList(data); err != nil {
		d.errorf(path, "%s is not a CRL (PEM or DER): %w", p, err)
		return p
	}
	if _, err := clientauth.CheckCRLFile(p, nil, time.Now()); err != nil {
		d.errorf(path, "%w", err) // a later block cut short, broken or of another type, or data after the last
	}
	return p
}

// firstPEM returns the first block of type typ that pem.Decode finds in
// data, or nil.
func firstPEM(data []byte, typ string) *pem.Block {
	for {
		b, rest := pem.Decode(data)
		if b == nil || b.Type == typ {
			return b
		}
		data = rest
	}
}

// caFile resolves p and reads it as serve does (clientauth.ReadCAFile):
// whole PEM, CA certificates or self-signed ones only. It returns the
// certificates, nil if the file is not good.
func (d *decoder) caFile(path, p string) (string, []*x509.Certificate) {
	before := len(d.errs)
	if p = d.pemFile(path, p); len(d.errs) > before {
		return p, nil // unreadable, or no PEM certificate at all
	}
	cas, err := clientauth.ReadCAFile(p)
	if err != nil {
		d.errorf(path, "%w", err)
	}
	return p, cas
}

// chainCAs refuses, at path (the ca key), the CAs of file that serve and
// reload refuse with revocation = "chain" (clientauth.ValidateCAs, run
// by Policy.Validate): a CA from which no self-signed root of the file
// can be reached, whose revocation nothing could check.
func (d *decoder) chainCAs(path, file string, cas []*x509.Certificate) {
	if err := clientauth.ValidateCAs(cas, clientauth.RevocationChain); err != nil {
		d.errorf(path, "client_auth: ca %s: %w", file, err)
	}
}

// headerPrefix checks a header name prefix: header name characters,
// ending with "-", and not the start of a forwarding header.
func (d *decoder) headerPrefix(path, v string) {
	name := strings.TrimSuffix(v, "-")
	switch {
	case !strings.HasSuffix(v, "-") || name == "" || !httpguts.ValidHeaderFieldName(name):
		d.errorf(path, "%q: want header name characters ending with \"-\", such as %q", v, DefaultClientCertHeaderPrefix)
	case hasFoldPrefix("X-Forwarded-For", v) || hasFoldPrefix("X-Real-Ip", v) || hasFoldPrefix("Forwarded", v):
		d.errorf(path, "%q would also remove forwarding headers from requests: choose a longer prefix", v)
	}
}

// hasFoldPrefix is strings.HasPrefix ignoring ASCII case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// requirePaths decodes require_paths: path prefixes, only in optional
// mode.
func (d *decoder) requirePaths(t *table, c *ClientAuth) {
	paths, ok := t.strings("require_paths", &c.RequirePaths)
	if !ok {
		return
	}
	if c.Mode != ClientAuthOptional {
		d.errorf(t.key("require_paths"), "used only with mode = \"optional\": with \"require\" every path needs a client certificate")
		return
	}
	for i, p := range c.RequirePaths {
		d.pathPrefix(paths[i], p)
	}
}

// summary is the one line `tlspilot check` prints about c.
func (c *ClientAuth) summary() string {
	var b strings.Builder
	if c.Mode == ClientAuthOptional {
		b.WriteString("optional")
		if len(c.RequirePaths) > 0 {
			fmt.Fprintf(&b, " (required under %s)", strings.Join(c.RequirePaths, ", "))
		}
	} else {
		b.WriteString("required")
	}
	fmt.Fprintf(&b, ", CAs in %s, verify depth %d, revocation %s", c.CAFile, c.VerifyDepth, c.Revocation)
	if c.Revocation != RevocationOff {
		var from []string
		if len(c.CRLFiles) > 0 {
			from = append(from, fmt.Sprintf("%d CRL files", len(c.CRLFiles)))
		}
		if c.CRLFetch {
			from = append(from, "CRL distribution points")
		}
		if c.OCSP {
			from = append(from, "OCSP "+or(c.OCSPResponder, "(the certificates' responder)"))
		}
		fmt.Fprintf(&b, " (%s; unknown: %s)", strings.Join(from, ", "), c.RevocationUnknown)
	}
	fmt.Fprintf(&b, ", identity headers %s*", c.HeaderPrefix)
	return b.String()
}
