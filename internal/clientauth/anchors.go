package clientauth

import (
	"bytes"
	"crypto/x509"
	"fmt"
)

// caLinks knows, for each certificate of Policy.CAs, the one of them
// that issued it, so a verified chain can be taken up to its self-signed
// root. crypto/x509 ends a chain at the first certificate of the pool it
// meets: with an intermediate in the ca file (intermediate + root, the
// usual bundle) the chain ends at the intermediate, and a client's own
// certificate listed there is a chain of one. OpenSSL (nginx's ssl_crl,
// -crl_check_all) goes on to the self-signed root, and so does Check.
// Built once by New; read-only after.
type caLinks struct {
	byRaw map[string]caLink // string(Raw) of a CA → its link
}

// caLink is what is known of one CA certificate.
type caLink struct {
	issuer     *x509.Certificate // the certificate of CAs that signed it; nil if none or self-signed
	selfSigned bool
}

// newCALinks links each of cas to its issuer among cas, checking the
// signatures once.
func newCALinks(cas []*x509.Certificate) caLinks {
	links := caLinks{byRaw: make(map[string]caLink, len(cas))}
	for _, c := range cas {
		if selfSigned(c) {
			links.byRaw[string(c.Raw)] = caLink{selfSigned: true}
			continue
		}
		var link caLink
		for _, p := range cas {
			if p != c && bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
				link.issuer = p
				break
			}
		}
		links.byRaw[string(c.Raw)] = link
	}
	return links
}

// selfSigned reports whether c is issued and signed by its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// unrooted returns an error naming the first CA that is not self-signed
// and whose issuer is not among them: in chain mode, nothing could check
// its revocation, and every client under it would get no answer.
func (l caLinks) unrooted(cas []*x509.Certificate) error {
	for _, c := range cas {
		if link := l.byRaw[string(c.Raw)]; !link.selfSigned && link.issuer == nil {
			return fmt.Errorf("revocation %q: the issuer of CA %q is not in ca, so its revocation cannot be checked: "+
				"add the CA certificates above it up to the self-signed root (or use revocation = %q)", RevocationChain, c.Subject, RevocationLeaf)
		}
	}
	return nil
}

// extend returns chain continued with the issuers of its last
// certificate found among the CAs, up to a self-signed one, and whether
// the last certificate of the result is self-signed. chain itself is not
// changed.
func (l caLinks) extend(chain []*x509.Certificate) (full []*x509.Certificate, rooted bool) {
	full = chain
	for range len(l.byRaw) + 1 { // bounded: no issuer loop can hold on
		top := full[len(full)-1]
		link, ok := l.byRaw[string(top.Raw)]
		switch {
		case !ok:
			return full, selfSigned(top)
		case link.selfSigned:
			return full, true
		case link.issuer == nil:
			return full, false
		}
		if len(full) == len(chain) {
			full = append(make([]*x509.Certificate, 0, len(chain)+2), chain...)
		}
		full = append(full, link.issuer)
	}
	return full, false
}
