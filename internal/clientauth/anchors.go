package clientauth

import (
	"bytes"
	"crypto/x509"
	"fmt"
)

// caLinks knows, for each certificate of Policy.CAs, the one of them
// that issued it on the shortest way to a self-signed root among them,
// so a verified chain can be taken up to that root. crypto/x509 ends a
// chain at the first certificate of the pool it meets: with an
// intermediate in the ca file (intermediate + root, the usual bundle)
// the chain ends at the intermediate, and a client's own certificate
// listed there is a chain of one. OpenSSL (nginx's ssl_crl,
// -crl_check_all) goes on to the self-signed root, and so does Check.
// Built once by New; read-only after.
//
// The links are built from the roots down, breadth first (newCALinks):
// with several certificates of the same name and key (a cross-signed
// root, the link certificates of a root key rollover, RFC 4210 section
// 4.4), taking the first issuer whose name and signature fit could pick
// a cross-certificate whose own issuer is missing, or go round in a
// loop, and the outcome would depend on the order of the file.
type caLinks struct {
	byRaw map[string]caLink // string(Raw) of a CA → its link
}

// caLink is what is known of one CA certificate.
type caLink struct {
	root bool // self-signed
	// issuer is the certificate of CAs that signed it, on the shortest
	// way to a root; nil for a root and for a CA from which no root can
	// be reached.
	issuer *x509.Certificate
	// twin, for a CA from which no root can be reached, is one from
	// which a root can, with the same subject and public key (the root
	// itself, for a cross-certificate of it whose issuer is not in CAs):
	// whatever the CA issued, the twin issued too, so a chain ending at
	// the CA may end at the twin instead.
	twin *x509.Certificate
}

// rooted reports whether a self-signed root can be reached from the CA.
func (l caLink) rooted() bool { return l.root || l.issuer != nil || l.twin != nil }

// newCALinks links each of cas to its issuer among cas on the shortest
// way to a self-signed root (an issuer that is a root first), checking
// the signatures once; CAs from which no root can be reached get a twin
// if they have one, else no link (see unrooted). The order of cas
// decides only between issuers at the same distance from a root.
func newCALinks(cas []*x509.Certificate) caLinks {
	links := caLinks{byRaw: make(map[string]caLink, len(cas))}
	var level []*x509.Certificate // the CAs linked last: roots first
	for _, c := range cas {
		if _, seen := links.byRaw[string(c.Raw)]; !seen && selfSigned(c) {
			links.byRaw[string(c.Raw)] = caLink{root: true}
			level = append(level, c)
		}
	}
	for len(level) > 0 {
		var next []*x509.Certificate
		for _, c := range cas {
			if _, done := links.byRaw[string(c.Raw)]; done {
				continue
			}
			for _, p := range level {
				if issued(p, c, links.byRaw[string(p.Raw)].root) == nil {
					links.byRaw[string(c.Raw)] = caLink{issuer: p}
					next = append(next, c)
					break
				}
			}
		}
		level = next
	}
	for _, c := range cas {
		if _, done := links.byRaw[string(c.Raw)]; !done {
			links.byRaw[string(c.Raw)] = caLink{twin: links.twinOf(c, cas)}
		}
	}
	return links
}

// twinOf returns a CA of cas from which a root can be reached, with the
// subject and public key of c, or nil.
func (l caLinks) twinOf(c *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	for _, o := range cas {
		if link, ok := l.byRaw[string(o.Raw)]; ok && (link.root || link.issuer != nil) &&
			bytes.Equal(o.RawSubject, c.RawSubject) && bytes.Equal(o.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) {
			return o
		}
	}
	return nil
}

// issued returns nil if p, self-signed when root, issued c, else why not:
// c names p as its issuer, p may issue certificates (basic constraints
// with CA:TRUE, or a self-signed old root without them; no key usage, or
// one with keyCertSign, as OpenSSL asks), and c's signature verifies with
// p's key. The signature is checked as crypto/x509 checks a self-signed
// one, SHA-1 allowed: a CA of the ca file signed with SHA-1 is a trust
// anchor that crypto/x509 takes without looking at its signature, and
// refusing to link it would refuse a configuration that works.
func issued(p, c *x509.Certificate, root bool) error {
	switch {
	case !bytes.Equal(c.RawIssuer, p.RawSubject):
		return fmt.Errorf("%q is not named as the issuer of %q", p.Subject, c.Subject)
	case p.BasicConstraintsValid && !p.IsCA || !p.BasicConstraintsValid && !root:
		return fmt.Errorf("%q (serial %s) is not a CA certificate (no basic constraints with CA:TRUE)", p.Subject, serialHex(p.SerialNumber))
	case p.KeyUsage != 0 && p.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("the key usage of %q (serial %s) does not allow signing certificates", p.Subject, serialHex(p.SerialNumber))
	}
	if err := p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return fmt.Errorf("the signature of CA %q does not verify with the key of %q (serial %s): %w",
			c.Subject, p.Subject, serialHex(p.SerialNumber), err)
	}
	return nil
}

// selfSigned reports whether c is issued and signed by its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// unrooted returns an error naming the first of cas from which no
// self-signed root of cas can be reached, and why: its issuer is not
// there, a certificate of its issuer's name is but did not sign it, or
// its issuers lead to no root (a loop, a root missing above them). In
// chain mode nothing could check its revocation, and every client under
// it would get no answer.
func (l caLinks) unrooted(cas []*x509.Certificate) error {
	for _, c := range cas {
		if !l.byRaw[string(c.Raw)].rooted() {
			return fmt.Errorf("revocation %q: %w, so its revocation cannot be checked: "+
				"add the CA certificates above it up to the self-signed root (or use revocation = %q)",
				RevocationChain, l.whyUnrooted(c, cas), RevocationLeaf)
		}
	}
	return nil
}

// whyUnrooted says why no root can be reached from c.
func (l caLinks) whyUnrooted(c *x509.Certificate, cas []*x509.Certificate) error {
	var first error // why the first certificate of the issuer's name did not issue c
	for _, p := range cas {
		if p == c || !bytes.Equal(c.RawIssuer, p.RawSubject) {
			continue
		}
		err := issued(p, c, l.byRaw[string(p.Raw)].root)
		if err == nil {
			return fmt.Errorf("no self-signed root of ca can be reached from CA %q: its issuers in ca lead to none (a loop, or a root missing above them)", c.Subject)
		}
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("no certificate of ca named %q issued CA %q: %w", c.Issuer, c.Subject, first)
	}
	return fmt.Errorf("the issuer of CA %q is not in ca", c.Subject)
}

// extend returns chain continued with the issuers of its last
// certificate found among the CAs, up to a self-signed one, and whether
// the last certificate of the result is self-signed. A last certificate
// (not the client's own) from which no root can be reached is replaced by
// its twin. chain itself is not changed.
func (l caLinks) extend(chain []*x509.Certificate) (full []*x509.Certificate, rooted bool) {
	full = chain
	// own says whether full is a copy, which may be changed. The loop is
	// bounded, though links only ever lead closer to a root.
	own := false
	for range len(l.byRaw) + 1 {
		top := full[len(full)-1]
		link, ok := l.byRaw[string(top.Raw)]
		switch {
		case !ok:
			return full, selfSigned(top)
		case link.root:
			return full, true
		case link.issuer == nil && (link.twin == nil || len(full) == 1):
			return full, false
		}
		if !own {
			full, own = append(make([]*x509.Certificate, 0, len(chain)+3), chain...), true
		}
		if link.issuer != nil {
			full = append(full, link.issuer)
		} else {
			full[len(full)-1] = link.twin
		}
	}
	return full, false
}
