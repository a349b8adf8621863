// Package fleetca is the issuer's own small certificate authority: it
// signs the issuer's HTTPS server certificate and the short-lived client
// certificates that agents present to it. It has nothing to do with the
// public ACME CA: no certificate it signs is meant for anyone but the
// issuer and its agents.
//
// The CA is one ECDSA P-256 key and one self-signed certificate, made
// once (tlspilot init) and kept in one storage record with the key sealed
// under the storage's key-encryption key, like every private key tlspilot
// stores.
package fleetca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// Lifetimes of what the CA signs.
const (
	// CALifetime is how long the CA certificate is valid.
	CALifetime = 10 * 365 * 24 * time.Hour
	// ServerLifetime is how long the issuer's server certificate is valid;
	// the issuer makes a new one well before it ends.
	ServerLifetime = 30 * 24 * time.Hour
	// ClientLifetime is how long an agent's client certificate is valid;
	// the agent renews it by itself.
	ClientLifetime = 7 * 24 * time.Hour
	// backdate is how far before now a certificate starts, for clocks
	// that run a little behind.
	backdate = 5 * time.Minute
)

// recordKey is the storage key of the CA record, also the lock name
// under which it is created and the additional data its sealed key is
// bound to.
const recordKey = "fleet/ca"

// CommonName is the subject common name of the fleet CA certificate.
const CommonName = "tlspilot fleet CA"

// Options says where the CA lives.
type Options struct {
	// Storage holds the CA record.
	Storage storage.Storage
	// Sealer seals and opens the CA's private key.
	Sealer *keys.Sealer
	// Logger receives what Create made; nil discards.
	Logger *slog.Logger
}

// CA is a loaded fleet CA. It is safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// record is the stored form of the CA.
type record struct {
	Certificate string `json:"certificate"` // PEM
	SealedKey   string `json:"sealed_key"`  // keys.Sealer output, bound to recordKey
}

// Open loads the CA from storage. A storage without one gives an error
// wrapping fs.ErrNotExist that says to run tlspilot init.
func Open(ctx context.Context, opts Options) (*CA, error) {
	if opts.Storage == nil || opts.Sealer == nil {
		return nil, errors.New("fleet CA: storage and sealer are required")
	}
	b, err := opts.Storage.Load(ctx, recordKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fleet CA: none in the storage (tlspilot init makes it when the config has issuer_listen): %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet CA: load: %w", err)
	}
	return decode(b, opts.Sealer)
}

// Create loads the CA, making it first if the storage has none. It holds
// the lock of the record meanwhile, so two processes running it at once
// make one CA. created tells whether this call made it.
func Create(ctx context.Context, opts Options) (ca *CA, created bool, err error) {
	if opts.Storage == nil || opts.Sealer == nil {
		return nil, false, errors.New("fleet CA: storage and sealer are required")
	}
	lease, err := opts.Storage.Lock(ctx, recordKey)
	if err != nil {
		return nil, false, fmt.Errorf("fleet CA: lock: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ca, err = Open(ctx, opts)
	if !errors.Is(err, fs.ErrNotExist) {
		return ca, false, err
	}
	ca, b, err := generate(opts.Sealer)
	if err != nil {
		return nil, false, err
	}
	if err := opts.Storage.Store(storage.WithLease(ctx, lease), recordKey, b); err != nil {
		return nil, false, fmt.Errorf("fleet CA: store: %w", err)
	}
	if opts.Logger != nil {
		opts.Logger.Info("fleet CA created", "subject", ca.cert.Subject.String(), "not_after", ca.cert.NotAfter)
	}
	return ca, true, nil
}

// generate makes a new CA and its record.
func generate(sealer *keys.Sealer) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA: generate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: CommonName, Organization: []string{"tlspilot"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA: self-sign: %w", err)
	}
	sealed, err := sealer.SealKey(key, recordKey)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b, err := json.Marshal(record{Certificate: string(certPEM), SealedKey: string(sealed)})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet CA: encode: %w", err)
	}
	ca, err := decode(b, sealer)
	return ca, b, err
}

// decode parses a CA record, opens its key and checks that the two
// belong together and form a CA.
func decode(b []byte, sealer *keys.Sealer) (*CA, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("fleet CA: decode %s: %w", recordKey, err)
	}
	block, _ := pem.Decode([]byte(r.Certificate))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("fleet CA: %s holds no certificate", recordKey)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: parse certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("fleet CA: %s: the certificate is not a CA", recordKey)
	}
	key, err := sealer.OpenKey([]byte(r.SealedKey), recordKey)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("fleet CA: %s: the key does not match the certificate", recordKey)
	}
	return &CA{cert: cert, key: key, pem: []byte(r.Certificate)}, nil
}

// Certificate returns the CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM returns the CA certificate in PEM, as agents are given it
// (issuer_ca).
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool returns a pool holding the CA certificate alone: the only root of
// the issuer's client certificates and of an agent's view of the issuer.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// serial returns a random positive 127-bit serial number (RFC 5280:
// positive, at most 20 octets; CA/B Forum: at least 64 random bits).
func serial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand.Read crashes the program instead)
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, always 16 octets
	return new(big.Int).SetBytes(b)
}
