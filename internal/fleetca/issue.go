package fleetca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// ErrWeakKey is wrapped by the error IssueClient and IssueServer return
// for a public key of an algorithm or size they do not accept.
var ErrWeakKey = errors.New("weak or unsupported key")

// IssueServer signs the issuer's server certificate for names (DNS names
// or IP addresses, as in issuer_names) and public key pub, valid for
// ServerLifetime from now, for server authentication only.
func (ca *CA) IssueServer(pub crypto.PublicKey, names []string) (*x509.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("fleet CA: server certificate: no names")
	}
	if err := checkKey(pub); err != nil {
		return nil, fmt.Errorf("fleet CA: server certificate: %w", err)
	}
	tmpl := ca.leaf(ServerLifetime, x509.ExtKeyUsageServerAuth)
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if len(names[0]) <= 64 {
		tmpl.Subject = pkix.Name{CommonName: names[0]}
	}
	return ca.sign(tmpl, pub)
}

// IssueClient signs an agent's client certificate for the key of csr,
// whose signature it checks: subject common name and DNS name host
// (CheckHost), valid for ttl (ClientLifetime when 0) from now, for client
// authentication only. Anything else the CSR asks for (subject, names,
// extensions) is ignored: the certificate says only what the issuer
// knows, which agent it was issued to.
func (ca *CA) IssueClient(csr *x509.CertificateRequest, host string, ttl time.Duration) (*x509.Certificate, error) {
	if err := CheckHost(host); err != nil {
		return nil, fmt.Errorf("fleet CA: client certificate: %w", err)
	}
	if err := CheckCSR(csr); err != nil {
		return nil, fmt.Errorf("fleet CA: client certificate for %s: %w", host, err)
	}
	if ttl <= 0 {
		ttl = ClientLifetime
	}
	tmpl := ca.leaf(ttl, x509.ExtKeyUsageClientAuth)
	tmpl.Subject = pkix.Name{CommonName: host}
	tmpl.DNSNames = []string{host}
	return ca.sign(tmpl, csr.PublicKey)
}

// CheckCSR checks what IssueClient checks of a CSR: its signature, and
// a key of a type tlspilot makes (else the error wraps ErrWeakKey). The
// issuer checks a CSR before it uses up the enrolment token that came
// with it.
func CheckCSR(csr *x509.CertificateRequest) error {
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("CSR signature: %w", err)
	}
	return checkKey(csr.PublicKey)
}

// leaf is the template shared by server and client certificates: a
// random serial, not a CA, a digital signature key usage and one
// extended key usage.
func (ca *CA) leaf(lifetime time.Duration, eku x509.ExtKeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
}

// sign signs tmpl for pub with the CA key and parses the result.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: parse what it signed: %w", err)
	}
	return cert, nil
}

// checkKey accepts the key types tlspilot makes (ECDSA P-256 and P-384,
// RSA of 2048, 3072 or 4096 bits) and nothing else.
func checkKey(pub crypto.PublicKey) error {
	if _, err := keys.TypeOf(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrWeakKey, err)
	}
	return nil
}

// CheckHost returns an error unless host is a usable agent name: a host
// name in lower case of one or more labels of a-z, 0-9 and '-' (not at
// either end of a label), at most 63 bytes a label and 253 in all. Such
// a name is safe as a storage key segment and as a certificate's DNS name.
func CheckHost(host string) error {
	if host == "" || len(host) > 253 {
		return fmt.Errorf("agent host %q: want 1 to 253 characters", host)
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("agent host %q: want a host name such as db1 or db1.example.com (labels of 1 to 63 characters, no '-' at either end)", host)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("agent host %q: character %q not allowed (a-z, 0-9, '-' and '.' only, lower case)", host, c)
			}
		}
	}
	return nil
}
