package solvers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
)

// ALPNProto is the ALPN protocol of tls-alpn-01 (RFC 8737).
const ALPNProto = "acme-tls/1"

// idPeAcmeIdentifier is the acmeIdentifier extension (RFC 8737 §6.1).
var idPeAcmeIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// TLSALPN01 presents tls-alpn-01 answers and builds the validation
// certificates.
type TLSALPN01 struct {
	store *certstore.Store
	log   *slog.Logger
	mu    sync.Mutex
	certs map[string]*tls.Certificate // identifier -> certificate, presented here or loaded
}

// NewTLSALPN01 returns a tls-alpn-01 solver keeping answers in store.
func NewTLSALPN01(store *certstore.Store, log *slog.Logger) *TLSALPN01 {
	return &TLSALPN01{store: store, log: log, certs: make(map[string]*tls.Certificate)}
}

// Present stores the answer for ch and prepares its certificate.
func (s *TLSALPN01) Present(ctx context.Context, ch acmeclient.Challenge) error {
	cert, err := ALPNCert(ch.Identifier.Value, ch.KeyAuthorization)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.certs[ch.Identifier.Value] = cert
	s.mu.Unlock()
	return s.store.StoreTLSALPN01(ctx, ch.Identifier.Value, ch.KeyAuthorization)
}

// CleanUp removes the answer for ch.
func (s *TLSALPN01) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	s.mu.Lock()
	delete(s.certs, ch.Identifier.Value)
	s.mu.Unlock()
	return s.store.DeleteTLSALPN01(ctx, ch.Identifier.Value)
}

// Certificate returns the validation certificate for a ClientHello that
// offers only acme-tls/1, or an error if no challenge is pending for the
// name it asks for. identifier is the normalised name (or IP) asked for.
func (s *TLSALPN01) Certificate(ctx context.Context, identifier string) (*tls.Certificate, error) {
	s.mu.Lock()
	c, ok := s.certs[identifier]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	ka, err := s.store.LoadTLSALPN01(ctx, identifier)
	if err != nil {
		return nil, fmt.Errorf("tls-alpn-01: no challenge pending for %q", identifier)
	}
	return ALPNCert(identifier, ka)
}

// ALPNIdentifier returns the identifier a tls-alpn-01 ClientHello asks
// for: the SNI, or for IP identifiers (RFC 8738) the address encoded in an
// in-addr.arpa or ip6.arpa name.
func ALPNIdentifier(serverName string) string {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if ip := reverseIP(name); ip != nil {
		return ip.String()
	}
	return name
}

func reverseIP(name string) net.IP {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(rest, ".")
		if len(p) != 4 {
			return nil
		}
		return net.ParseIP(p[3] + "." + p[2] + "." + p[1] + "." + p[0]).To4()
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(rest, ".")
		if len(p) != 32 {
			return nil
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		return net.ParseIP(b.String())
	}
	return nil
}

// ALPNCert builds the self-signed validation certificate for identifier
// carrying the SHA-256 of keyAuth in the acmeIdentifier extension.
func ALPNCert(identifier, keyAuth string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(keyAuth))
	ext, err := asn1.Marshal(sum[:])
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "tlspilot tls-alpn-01"},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: idPeAcmeIdentifier, Critical: true, Value: ext}},
	}
	if ip := net.ParseIP(identifier); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{identifier}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tls-alpn-01 certificate for %s: %w", identifier, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
