// Package clientauth checks client certificates that the TLS stack has
// verified against a site's client CA: chain depth, validity, and
// revocation from CRL files, CRLs fetched from the distribution points the
// certificates name, and OCSP responders (RFC 5280, RFC 6960).
//
// A Checker is built from a Policy (what a site's [site.client_auth]
// config says) and Options (storage, logger, HTTP client, timeout). The
// serving side calls Checker.VerifyConnection from tls.Config's
// VerifyConnection, or Checker.Check with one verified chain; a refused
// certificate yields a *Refusal that names the reason, the subject and
// the serial.
//
// Which answer counts: a fresh CRL that covers the certificate's issuer
// (from a file, then from a distribution point) is enough; OCSP is asked
// only when no CRL answers. Answers in memory are used first and need no
// I/O; then stored answers (which survive a restart), then the network,
// bounded by Options.Timeout. When no fresh answer can be had,
// Policy.Unknown decides: deny (hard fail) or allow (soft fail).
package clientauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Mode says whether a client must present a certificate.
type Mode string

// The modes of Policy.Mode.
const (
	// ModeRequire refuses a client without a certificate (mod_ssl's
	// SSLVerifyClient require). The empty Mode means ModeRequire.
	ModeRequire Mode = "require"
	// ModeOptional lets a client without a certificate through, and
	// verifies and checks one that is given.
	ModeOptional Mode = "optional"
)

// Revocation says which certificates of a chain are checked for
// revocation.
type Revocation string

// The values of Policy.Revocation.
const (
	// RevocationOff checks nothing for revocation. The empty Revocation
	// means RevocationOff.
	RevocationOff Revocation = "off"
	// RevocationLeaf checks the client's own certificate only, against
	// its issuer (itself when it is a self-signed certificate of CAs).
	RevocationLeaf Revocation = "leaf"
	// RevocationChain checks every certificate of the chain that is not
	// self-signed, each against the certificate that issued it, up to
	// the self-signed root: a CA of CAs that the TLS stack takes as the
	// trust anchor (an intermediate in the ca file) is checked against
	// its issuer in CAs too, on the shortest way to a self-signed root
	// among them, as OpenSSL's -crl_check_all does. New refuses CAs from
	// which no such root can be reached.
	RevocationChain Revocation = "chain"
)

// Unknown says what happens when no fresh revocation answer can be had.
type Unknown string

// The values of Policy.Unknown.
const (
	// UnknownDeny refuses the certificate (hard fail). The empty Unknown
	// means UnknownDeny.
	UnknownDeny Unknown = "deny"
	// UnknownAllow accepts it and logs a warning (soft fail).
	UnknownAllow Unknown = "allow"
)

// Policy is what a site's client authentication config asks for. Its
// zero values are the strict ones: certificates required, unknown
// revocation status denied.
type Policy struct {
	// CAs are the certificates client certificates must chain to: CA
	// certificates (basic constraints with CA:TRUE) or self-signed ones
	// (see ReadCAFile). At least one is required. In chain mode a
	// self-signed root among them must be reachable from each, through
	// issuers among them (ValidateCAs).
	CAs []*x509.Certificate

	// Mode says whether a client must present a certificate.
	Mode Mode

	// VerifyDepth is the most certificates allowed above the client's own
	// in the verified chain, the trust anchor included (mod_ssl's
	// SSLVerifyDepth, as config.ClientAuth.VerifyDepth): 0 accepts only a
	// certificate of CAs itself, 1 one issued directly by a CA of CAs, 2
	// adds one intermediate.
	VerifyDepth int

	// Revocation says which certificates are checked for revocation.
	Revocation Revocation

	// CRLFiles are CRL files, PEM (one or more "X509 CRL" blocks) or DER.
	// A file is read again when its modification time or size changes.
	CRLFiles []string

	// CRLFetch fetches the CRLs at the http:// distribution points the
	// certificates name (RFC 5280, section 4.2.1.13).
	CRLFetch bool

	// OCSP asks the OCSP responder the certificate names in its
	// Authority Information Access extension, or OCSPResponder.
	OCSP bool

	// OCSPResponder, when set, is the http:// (or https://) URL of the
	// OCSP responder
	// asked for every certificate, whatever the certificate names
	// (mod_ssl's SSLOCSPEndpoint with SSLOCSPOverrideResponder).
	OCSPResponder string

	// Unknown says what happens when no fresh CRL or OCSP answer can be
	// had for a certificate that is checked.
	Unknown Unknown
}

// Validate returns an error naming the first field that is wrong:
// unknown mode, revocation or unknown value, a negative depth, CAs that
// ValidateCAs refuses (none, a certificate neither a CA's nor
// self-signed, in chain mode a CA from which no self-signed root among
// them can be reached), an OCSP responder URL that is not http://, or a
// revocation check with no source of answers.
func (p Policy) Validate() error {
	_, err := p.validate()
	return err
}

// validate is Validate, and returns the links of p.CAs when p checks
// revocation (Check needs them only then), built once.
func (p Policy) validate() (caLinks, error) {
	switch p.Mode {
	case "", ModeRequire, ModeOptional:
	default:
		return caLinks{}, fmt.Errorf("client_auth: mode %q: want require or optional", p.Mode)
	}
	switch p.Revocation {
	case "", RevocationOff, RevocationLeaf, RevocationChain:
	default:
		return caLinks{}, fmt.Errorf("client_auth: revocation %q: want off, leaf or chain", p.Revocation)
	}
	switch p.Unknown {
	case "", UnknownDeny, UnknownAllow:
	default:
		return caLinks{}, fmt.Errorf("client_auth: revocation_unknown %q: want deny or allow", p.Unknown)
	}
	if p.VerifyDepth < 0 {
		return caLinks{}, fmt.Errorf("client_auth: verify_depth %d: must not be negative", p.VerifyDepth)
	}
	links, err := validateCAs(p.CAs, p.Revocation)
	if err != nil {
		return caLinks{}, fmt.Errorf("client_auth: ca: %w", err)
	}
	if p.OCSPResponder != "" && !isHTTPURL(p.OCSPResponder, true) {
		return caLinks{}, fmt.Errorf("client_auth: ocsp_responder %q: want an http:// URL", p.OCSPResponder)
	}
	if p.checks() && len(p.CRLFiles) == 0 && !p.CRLFetch && !p.OCSP {
		return caLinks{}, fmt.Errorf("client_auth: revocation %q needs crl, crl_fetch or ocsp", p.Revocation)
	}
	return links, nil
}

// ClientAuth is the tls.ClientAuthType for the mode: the TLS stack
// verifies the chain against Pool before Checker sees it.
func (p Policy) ClientAuth() tls.ClientAuthType {
	if p.Mode == ModeOptional {
		return tls.VerifyClientCertIfGiven
	}
	return tls.RequireAndVerifyClientCert
}

// Pool returns a new pool holding CAs, for tls.Config.ClientCAs.
func (p Policy) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range p.CAs {
		pool.AddCert(c)
	}
	return pool
}

// ValidateCAs returns an error if cas may not be Policy.CAs with
// revocation r, as Policy.Validate (and so New) finds it, without the
// "client_auth: ca: " it puts in front: cas is empty, holds nil or a
// certificate that is neither a CA certificate nor self-signed
// (checkCA), or, with RevocationChain, a CA from which no self-signed
// root among cas can be reached (its issuer is missing, did not sign it,
// or leads to no root: nothing could check its revocation). A
// configuration check that reads the ca file with ReadCAFile runs it to
// refuse what New would.
func ValidateCAs(cas []*x509.Certificate, r Revocation) error {
	_, err := validateCAs(cas, r)
	return err
}

// validateCAs is ValidateCAs, and returns the links of cas when r checks
// revocation (none otherwise).
func validateCAs(cas []*x509.Certificate, r Revocation) (caLinks, error) {
	if len(cas) == 0 {
		return caLinks{}, errors.New("no CA certificate")
	}
	for _, c := range cas {
		if c == nil {
			return caLinks{}, errors.New("nil certificate")
		}
		if err := checkCA(c); err != nil {
			return caLinks{}, err
		}
	}
	if r != RevocationLeaf && r != RevocationChain {
		return caLinks{}, nil
	}
	links := newCALinks(cas)
	if r == RevocationChain {
		return links, links.unrooted(cas)
	}
	return links, nil
}

// checks reports whether any certificate is checked for revocation.
func (p Policy) checks() bool {
	return p.Revocation == RevocationLeaf || p.Revocation == RevocationChain
}

// ReadCAFile reads the PEM "CERTIFICATE" blocks of the file at path, for
// Policy.CAs; blocks of other types are skipped, but for OpenSSL's
// "TRUSTED CERTIFICATE", whose trust settings (the purposes a CA is
// trusted for) it cannot honour: skipping it would leave out a CA the
// administrator listed, and taking its certificate alone could trust it
// for more than they allowed. It fails, naming the file, if the file
// holds one of those, or no certificate, if one does not parse, if the file is
// not whole (a block cut short or broken, data after the last block: see
// pemBlocks), or if a certificate is neither a CA certificate (basic
// constraints with CA:TRUE) nor self-signed (checkCA): a client's own
// certificate issued by a CA, listed there, would be its own trust
// anchor with nothing above it to check its revocation against, and
// OpenSSL (nginx's ssl_client_certificate) does not take one as an
// anchor either. It does not check that the CAs lead to a root
// (ValidateCAs does, in chain mode).
func ReadCAFile(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client_auth: ca: %w", err)
	}
	blocks, err := pemBlocks(data, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("client_auth: ca %s: %w", path, err)
	}
	if trusted, _ := pemBlocks(data, "TRUSTED CERTIFICATE"); len(trusted) > 0 {
		return nil, fmt.Errorf("client_auth: ca %s: %d TRUSTED CERTIFICATE block(s): OpenSSL's trust settings, which tlspilot cannot honour; "+
			"if they allow client authentication, write each as a plain CERTIFICATE (openssl x509 -in FILE -out NEW)", path, len(trusted))
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("client_auth: ca %s: no PEM CERTIFICATE block", path)
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for _, der := range blocks {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("client_auth: ca %s: %w", path, err)
		}
		if err := checkCA(c); err != nil {
			return nil, fmt.Errorf("client_auth: ca %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// checkCA returns an error naming c unless it is a CA certificate (basic
// constraints with CA:TRUE, RFC 5280 section 4.2.1.9) or self-signed:
// an old version 1 root without basic constraints, or a client's own
// self-signed certificate pinned in the ca file (CA:FALSE or none),
// which OpenSSL and so nginx take as a trust anchor too, and which Check
// checks against itself. What it refuses is a certificate some other
// key issued that is not a CA's: a client certificate issued by the CA
// that should be listed instead.
func checkCA(c *x509.Certificate) error {
	if c.BasicConstraintsValid && c.IsCA || selfSigned(c) {
		return nil
	}
	return fmt.Errorf("certificate %q (serial %s) is not a CA certificate (no basic constraints with CA:TRUE), nor self-signed: "+
		"list the CA that issued it (%q), not the client certificates themselves", c.Subject, serialHex(c.SerialNumber), c.Issuer)
}

// isHTTPURL reports whether s is an absolute http:// URL with a host, or
// https:// too when orHTTPS. CRLs and OCSP responses are signed, and
// fetching them over TLS could loop back into a revocation check (RFC
// 5280, section 4.2.1.13), so distribution points are used over plain
// HTTP only; an OCSP responder the administrator names may use HTTPS.
func isHTTPURL(s string, orHTTPS bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme, "http") || orHTTPS && strings.EqualFold(u.Scheme, "https")
}
