// Package tempcert makes the self-signed stand-in certificates tlspilot
// serves while the real one is not there yet: before the CA's first
// certificate arrives, or before a site's cert_file is written. No client
// trusts them; they only let handshakes for the names complete, so that a
// start never waits.
package tempcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// commonName is the subject common name of every certificate New makes.
const commonName = "tlspilot temporary certificate"

// New returns a certificate for names (host names or IP addresses) signed
// by key itself, valid from an hour ago for 7 days, for server
// authentication only. waitingFor ends up in its organization ("tlspilot
// (not trusted: waiting for the CA)"), so a person who looks at it sees
// why it is served. Leaf is set.
func New(names []string, key *ecdsa.PrivateKey, waitingFor string) (*tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("temporary certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"tlspilot (not trusted: waiting for " + waitingFor + ")"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("temporary certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("temporary certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Is reports whether c is a certificate New made: self-signed, with
// New's common name.
func Is(c *tls.Certificate) bool {
	if c == nil || c.Leaf == nil {
		return false
	}
	l := c.Leaf
	return l.Subject.CommonName == commonName && bytes.Equal(l.RawIssuer, l.RawSubject)
}
