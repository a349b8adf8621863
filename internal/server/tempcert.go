package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"

	"github.com/tlspilot/tlspilot/internal/tempcert"
)

// temporaryCert makes the self-signed certificate a site with certificate
// files serves until the files exist, so that serve can start before the
// process that writes them (`tlspilot certs`) has run.
func temporaryCert(names []string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("temporary certificate: %w", err)
	}
	return tempcert.New(names, key, "cert_file")
}
