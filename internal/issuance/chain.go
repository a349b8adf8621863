package issuance

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The checks below decide whether a certificate chain, from the CA or
// imported, may be stored and put in service. Each refuses with an error
// that says what is wrong, so that a broken or hostile CA costs a failed
// renewal, never the certificate in service.

// Validity allowances for a new leaf (checkValidity).
const (
	// notBeforeSkew is how far ahead of this machine's clock a leaf's
	// NotBefore may be. Let's Encrypt backdates NotBefore by an hour, but
	// other CAs do not backdate at all, so that a CA whose clock runs a few
	// minutes ahead of ours issues certificates that start "in the future";
	// an hour covers any clock kept by NTP, and a certificate that starts
	// later than that would fail every handshake until then.
	notBeforeSkew = time.Hour
	// expiryMargin is the least validity a leaf must have left. A real CA
	// issues days or months; the margin is kept small because tests issue
	// certificates valid for a few seconds.
	expiryMargin = time.Second
)

// pemBegin starts every PEM block (RFC 7468 §2).
const pemBegin = "-----BEGIN "

// parseChain parses a certificate chain, leaf first, in the format of
// RFC 8555 §9.1 (application/pem-certificate-chain): CERTIFICATE blocks
// only, in the strict encoding of RFC 7468 §3, with nothing but
// whitespace around them. Anything else (a block that does not parse,
// another block type, text between or after the blocks) is refused rather
// than dropped: the RFC forbids explanatory text, so such a chain comes
// from a broken or tampered answer, and what else it holds cannot be
// trusted either. It returns the certificates and the chain encoded
// again from them alone, which is what callers must store and serve.
func parseChain(chainPEM []byte) ([]*x509.Certificate, []byte, error) {
	var (
		certs []*x509.Certificate
		clean []byte
	)
	for rest := bytes.TrimSpace(chainPEM); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		n := len(certs) + 1
		if !bytes.HasPrefix(rest, []byte(pemBegin)) {
			where := "before the first certificate"
			if n > 1 {
				where = fmt.Sprintf("after certificate %d", n-1)
			}
			return nil, nil, fmt.Errorf("chain: text that is not PEM %s (RFC 8555 §9.1 allows none)", where)
		}
		b, after := pem.Decode(rest)
		// pem.Decode skips a malformed block to decode the next one: a
		// block read must be the only one in what it consumed.
		if b == nil || bytes.Count(rest[:len(rest)-len(after)], []byte(pemBegin)) != 1 {
			return nil, nil, fmt.Errorf("chain: PEM block %d is malformed", n)
		}
		rest = after
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("chain: block %d is a %q block, not a certificate (RFC 8555 §9.1)", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("chain: parse certificate %d: %w", n, err)
		}
		certs = append(certs, c)
		clean = append(clean, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificate in chain")
	}
	return certs, clean, nil
}

// checkLinks checks that each certificate of a chain, leaf first, is
// signed by the one after it (RFC 8555 §9.1: each "SHOULD directly
// certify the one preceding it"; a TLS client needs them in that order).
// It checks the signatures only, not whether each signer is a CA: that,
// and the validity of the intermediates (a chain may rightly end with an
// expired cross-signed root), are for the client to judge against its own
// roots; and a chain of one self-signed certificate repeated, as some
// tools write a full chain, stays acceptable to Import.
func checkLinks(certs []*x509.Certificate) error {
	for i := 0; i+1 < len(certs); i++ {
		child, parent := certs[i], certs[i+1]
		if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
			return fmt.Errorf("chain: certificate %d (%s) is not signed by certificate %d (%s): %w",
				i+1, child.Subject.CommonName, i+2, parent.Subject.CommonName, err)
		}
	}
	return nil
}

// checkValidity checks that leaf is in its validity period at now, within
// the allowances above: its NotAfter is after its NotBefore, it has not
// expired (and does not within expiryMargin), and it does not start more
// than notBeforeSkew after now (RFC 5280 §4.1.2.5).
func checkValidity(leaf *x509.Certificate, now time.Time) error {
	const layout = time.RFC3339
	switch {
	case !leaf.NotAfter.After(leaf.NotBefore):
		return fmt.Errorf("leaf certificate is never valid: NotAfter %s is not after NotBefore %s",
			leaf.NotAfter.UTC().Format(layout), leaf.NotBefore.UTC().Format(layout))
	case !leaf.NotAfter.After(now.Add(expiryMargin)):
		return fmt.Errorf("leaf certificate expired at %s (now %s)",
			leaf.NotAfter.UTC().Format(layout), now.UTC().Format(layout))
	case leaf.NotBefore.After(now.Add(notBeforeSkew)):
		return fmt.Errorf("leaf certificate is not valid before %s, more than %v after this clock's %s",
			leaf.NotBefore.UTC().Format(layout), notBeforeSkew, now.UTC().Format(layout))
	}
	return nil
}

// checkNames checks that leaf names exactly names (normalised, as
// requested): it covers each of them, and each of its DNS and IP subject
// alternative names is one of them. DNS names are compared without regard
// to case and wildcards literally ("*.example.com" is covered by that
// name only, never by "a.example.com"); IP addresses by value.
func checkNames(leaf *x509.Certificate, names []string) error {
	if err := checkCovers(leaf, names); err != nil {
		return err
	}
	for _, d := range leaf.DNSNames {
		if !requestedName(names, "dns", d) {
			return fmt.Errorf("leaf certificate also names %s, which was not requested", d)
		}
	}
	for _, ip := range leaf.IPAddresses {
		if !requestedName(names, "ip", ip.String()) {
			return fmt.Errorf("leaf certificate also names %s, which was not requested", ip)
		}
	}
	return nil
}

// checkCovers checks that leaf covers each of names, compared as
// checkNames compares them; it may name others too.
func checkCovers(leaf *x509.Certificate, names []string) error {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !hasIP(leaf, ip) {
				return fmt.Errorf("leaf certificate does not cover %s", n)
			}
		} else if !hasDNS(leaf, n) {
			return fmt.Errorf("leaf certificate does not cover %s", n)
		}
	}
	return nil
}

// samePublic reports whether leaf is for the public key pub.
func samePublic(leaf *x509.Certificate, pub crypto.PublicKey) bool {
	lpub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && lpub.Equal(pub)
}

func hasIP(c *x509.Certificate, ip net.IP) bool {
	for _, x := range c.IPAddresses {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}

func hasDNS(c *x509.Certificate, n string) bool {
	for _, x := range c.DNSNames {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
}
