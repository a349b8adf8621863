package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// DefaultClientCertHeaderPrefix starts the names of the identity
// headers a site with ClientAuth sends upstream, unless
// ClientAuth.HeaderPrefix says otherwise. Request headers starting with
// it, or naming a client certificate as other TLS terminators do
// (otherCertHeaders), are removed from every proxied request, on every
// site.
const DefaultClientCertHeaderPrefix = "X-Client-Cert-"

// The identity headers' names after the prefix, and the values of the
// Verify header (mod_ssl's SSL_CLIENT_VERIFY).
const (
	hdrVerify      = "Verify"             // verifySuccess or verifyNone
	hdrSubject     = "Subject"            // RFC 4514
	hdrIssuer      = "Issuer"             // RFC 4514
	hdrSerial      = "Serial"             // upper-case hex
	hdrFingerprint = "Fingerprint-SHA256" // lower-case hex of the DER
	hdrSANs        = "SANs"               // "DNS:a.example, IP:192.0.2.1, email:…, URI:…"

	verifySuccess = "SUCCESS"
	verifyNone    = "NONE"
)

// identity writes a verified client's identity into proxied requests.
// The names are written as documented (not canonicalised); upstreams
// compare header names without regard to case.
type identity struct {
	prefix                                             string
	verify, subject, issuer, serial, fingerprint, sans string
}

// newIdentity checks prefix ("" for the default) and names the headers.
func newIdentity(prefix string) (*identity, error) {
	if prefix == "" {
		prefix = DefaultClientCertHeaderPrefix
	}
	if !strings.HasSuffix(prefix, "-") || !validHeaderName(strings.TrimSuffix(prefix, "-")) {
		return nil, fmt.Errorf("client auth: header prefix %q: want header name characters ending with -", prefix)
	}
	return &identity{prefix: prefix, verify: prefix + hdrVerify, subject: prefix + hdrSubject, issuer: prefix + hdrIssuer,
		serial: prefix + hdrSerial, fingerprint: prefix + hdrFingerprint, sans: prefix + hdrSANs}, nil
}

// otherCertHeaders start the names of the headers in which other TLS
// terminators hand upstreams a client certificate or its verification,
// which upstreams behind them trust: RFC 9440's Client-Cert and
// Client-Cert-Chain, Envoy's X-Forwarded-Client-Cert, Traefik's
// X-Forwarded-Tls-Client-Cert(-Info), the X-SSL-Client-*, SSL-Client-*,
// X-Client-Verify and X-Client-DN of common nginx and HAProxy set-ups,
// IIS ARR's X-ARR-ClientCert and AWS load balancers'
// X-Amzn-Mtls-Clientcert*. A client could otherwise claim a certificate
// to an upstream that once sat behind one of them.
var otherCertHeaders = [...]string{
	"Client-Cert", "X-Client-Cert", "X-Forwarded-Client-Cert", "X-Forwarded-Tls-Client-Cert",
	"X-Ssl-Client-", "Ssl-Client-", "X-Client-Verify", "X-Client-Dn", "X-Arr-Clientcert", "X-Amzn-Mtls-Clientcert",
}

// identityPrefixes are the header prefixes of every site's ClientAuth,
// DefaultClientCertHeaderPrefix and otherCertHeaders: a proxy of any
// site removes headers starting with any of them, since sites may share
// an upstream that trusts them.
func identityPrefixes(sites []Site) []string {
	out := append([]string{DefaultClientCertHeaderPrefix}, otherCertHeaders[:]...)
	for i := range sites {
		if ca := sites[i].ClientAuth; ca != nil && ca.HeaderPrefix != "" &&
			!slices.ContainsFunc(out, func(p string) bool { return strings.EqualFold(p, ca.HeaderPrefix) }) {
			out = append(out, ca.HeaderPrefix)
		}
	}
	return out
}

// upstreamIdentity is what a proxy does with client identity headers.
type upstreamIdentity struct {
	strip []string  // prefixes of request headers removed (identityPrefixes)
	set   *identity // the site's headers; nil when it asks for no certificate
}

// rewrite removes from h every header whose name starts, in any case,
// with a prefix of strip (what a client sends under these names never
// reaches an upstream), then sets the site's identity headers from cs.
func (u upstreamIdentity) rewrite(h http.Header, cs *tls.ConnectionState) {
	for k := range h {
		for _, p := range u.strip {
			if hasPrefixFold(k, p) {
				delete(h, k)
				break
			}
		}
	}
	if u.set != nil {
		u.set.set(h, cs)
	}
}

// hasPrefixFold reports whether s starts with prefix ignoring ASCII case
// and counting '_' and '-' as one: CGI, FastCGI and many WSGI servers
// map both to the same variable (HTTP_X_CLIENT_CERT_SUBJECT), so a
// client's "X-Client-Cert_Subject" would pass for the proxy's
// "X-Client-Cert-Subject" behind them (Apache drops such headers too).
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		a, b := s[i], prefix[i]
		if a == '_' {
			a = '-'
		}
		if b == '_' {
			b = '-'
		}
		if a != b && lower(a) != lower(b) {
			return false
		}
	}
	return true
}

// lower is ASCII lower case of one byte.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// set writes the identity headers of the connection's client
// certificate into h: Verify NONE alone when there is none. The
// certificate was verified in this site's handshake
// (siteAuth.verifyConnection; table.forTLSRequest sees to the site).
func (id *identity) set(h http.Header, cs *tls.ConnectionState) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		h[id.verify] = []string{verifyNone}
		return
	}
	c := cs.PeerCertificates[0]
	sum := sha256.Sum256(c.Raw)
	h[id.verify] = []string{verifySuccess}
	h[id.subject] = []string{headerSafe(c.Subject.String())}
	h[id.issuer] = []string{headerSafe(c.Issuer.String())}
	h[id.serial] = []string{strings.ToUpper(c.SerialNumber.Text(16))}
	h[id.fingerprint] = []string{hex.EncodeToString(sum[:])}
	if sans := sanList(c); sans != "" {
		h[id.sans] = []string{headerSafe(sans)}
	}
}

// sanList is the certificate's subject alternative names in OpenSSL's
// notation, ", "-separated.
func sanList(c *x509.Certificate) string {
	var parts []string
	for _, n := range c.DNSNames {
		parts = append(parts, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		parts = append(parts, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		parts = append(parts, "email:"+e)
	}
	for _, u := range c.URIs {
		parts = append(parts, "URI:"+u.String())
	}
	return strings.Join(parts, ", ")
}

// headerSafe writes control characters (which no header value may hold)
// as \xNN.
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
