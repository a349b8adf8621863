package tlspilot

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"time"
)

// FileStatus reports a certificate that is managed elsewhere and read
// from certFile (a site's cert_file), for names, so that `tlspilot
// status` grades it by its expiry like a managed one: valid, expiring
// inside warn's window (WARNING), expired (CRITICAL). A file that does
// not exist yet, or holds no certificate, is pending (WARNING) with the
// reason in LastError. tlspilot never renews it: NextRenewal stays zero.
func FileStatus(certFile string, names []string, now time.Time, warn WarnWindow) CertStatus {
	c := CertStatus{ID: "file:" + certFile, Names: slices.Clone(names), Managed: true, CertFile: certFile}
	leaf, err := readLeaf(certFile)
	if err != nil {
		c.LastError = err.Error()
		c.settle(now, warn)
		return c
	}
	c.Serving = true
	c.NotBefore, c.NotAfter = leaf.NotBefore, leaf.NotAfter
	c.Issuer, c.Serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
	c.settle(now, warn)
	return c
}

// readLeaf returns the first certificate of a PEM file.
func readLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%s: no CERTIFICATE block", path)
		}
		if b.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return leaf, nil
		}
	}
}
