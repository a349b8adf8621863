package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrUnknownCert is wrapped by the error of Accept for a client
// certificate its agent's record does not list (replaced, expired, or
// dropped by a revocation).
var ErrUnknownCert = errors.New("client certificate not issued to this agent or no longer valid")

// seenEvery is how often an agent's LastSeen is written at most.
const seenEvery = time.Minute

// serialHex is a certificate's serial number as records keep it.
func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// AddClientCert lists c, just issued, among the client certificates the
// issuer accepts from host, and drops the expired ones. A revoked host
// gives an error wrapping ErrRevoked, and c is not listed: a revocation
// made while c was being issued would otherwise leave it listed, to be
// accepted again once host is enrolled again.
func (r *Registry) AddClientCert(ctx context.Context, host string, c *x509.Certificate) error {
	_, err := r.update(ctx, host, func(a *Agent) error {
		if !a.Revoked.IsZero() {
			return fmt.Errorf("fleet: %s: %w at %s", host, ErrRevoked, a.Revoked.UTC().Format(time.RFC3339))
		}
		now := time.Now()
		a.ClientCerts = slices.DeleteFunc(a.ClientCerts, func(cc ClientCert) bool { return !now.Before(cc.NotAfter) })
		a.ClientCerts = append(a.ClientCerts, ClientCert{Serial: serialHex(c), NotAfter: c.NotAfter})
		return nil
	})
	return err
}

// Accept returns the agent that c, a client certificate the TLS stack
// has verified against the fleet CA, was issued to, if the issuer still
// accepts it: the agent exists, is not revoked and lists c. It records
// the agent as seen (at most once a minute). Otherwise the error wraps
// ErrNoAgent, ErrRevoked or ErrUnknownCert.
func (r *Registry) Accept(ctx context.Context, c *x509.Certificate) (*Agent, error) {
	host := c.Subject.CommonName
	a, err := r.Agent(ctx, host)
	if err != nil {
		return nil, err
	}
	if !a.Revoked.IsZero() {
		return nil, fmt.Errorf("fleet: %s: %w at %s", host, ErrRevoked, a.Revoked.UTC().Format(time.RFC3339))
	}
	serial := serialHex(c)
	if !slices.ContainsFunc(a.ClientCerts, func(cc ClientCert) bool { return cc.Serial == serial }) {
		return nil, fmt.Errorf("fleet: %s: serial %s: %w", host, serial, ErrUnknownCert)
	}
	if time.Since(a.LastSeen) >= seenEvery {
		return r.update(ctx, host, func(a *Agent) error {
			if !a.Revoked.IsZero() { // revoked since it was read
				return fmt.Errorf("fleet: %s: %w", host, ErrRevoked)
			}
			a.LastSeen = time.Now()
			return nil
		})
	}
	return a, nil
}
