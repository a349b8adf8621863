package keys

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
)

// maxCNLength is the longest common name X.509 allows (ub-common-name).
const maxCNLength = 64

// CSR returns a DER certificate request for the DNS names and IP
// addresses, signed by key. The names go into the subjectAltName extension
// exactly as given. The subject common name is the first DNS name (or the
// first IP address if there are no DNS names), Let's Encrypt style, unless
// it is longer than 64 bytes, in which case the subject is left empty. An
// empty name list, an empty DNS name or a nil IP is an error.
func CSR(key crypto.Signer, dnsNames []string, ips []net.IP) ([]byte, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("keys: csr: no DNS names or IP addresses")
	}
	for _, n := range dnsNames {
		if n == "" {
			return nil, errors.New("keys: csr: empty DNS name")
		}
	}
	for _, ip := range ips {
		if ip == nil {
			return nil, errors.New("keys: csr: nil IP address")
		}
	}
	first := ""
	if len(dnsNames) > 0 {
		first = dnsNames[0]
	} else {
		first = ips[0].String()
	}
	tmpl := &x509.CertificateRequest{DNSNames: dnsNames, IPAddresses: ips}
	if len(first) <= maxCNLength {
		tmpl.Subject = pkix.Name{CommonName: first}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("keys: csr for %s: %w", first, err)
	}
	return der, nil
}
