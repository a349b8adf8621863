package tlspilot

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/storage"
)

// CSRCertificate is a certificate ObtainCSR obtained for someone else's
// key.
type CSRCertificate struct {
	// Fullchain is the certificate and its chain, PEM, leaf first.
	Fullchain []byte
	// Leaf is the certificate.
	Leaf *x509.Certificate
	// OrderURL is the ACME order that produced it.
	OrderURL string
	// RenewalStart and RenewalEnd are the CA's suggested renewal window
	// for it (RFC 9773 §4.2), zero when the CA gave none with the
	// certificate.
	RenewalStart, RenewalEnd time.Time
}

// ObtainCSR obtains a certificate for the key of csr, which the Manager
// never holds (a fleet agent's), covering names, with dns-01: the
// Manager's Config.DNSProvider is required. names must all be in the CSR
// (its DNS names or common name); the caller decides that they may be
// obtained at all (fleet policy).
//
// id names the work in storage: an order saved under it by an earlier,
// interrupted call (a process killed mid-order) is resumed when it was
// for the same names and, once the CSR was sent, the same CSR, so a
// restart places no second order. Calls with one id are serialized
// under the storage lock issue/<id>, across processes sharing the
// storage. id is one storage key segment (letters, digits, '-', '_',
// '.'); CertStatus and the managed certificates never see it. Orders
// count against Config.OrderLimit like every other; the caller bounds
// how many run at once. Records presented for orders that run at the
// same time are sent to the DNS provider and waited for together.
func (m *Manager) ObtainCSR(ctx context.Context, id string, csr *x509.CertificateRequest, names []string) (CSRCertificate, error) {
	return m.ObtainCSRReplacing(ctx, id, csr, names, nil)
}

// ObtainCSRReplacing is ObtainCSR for a certificate that replaces old (a
// renewal; nil for none): when the CA offers renewal information, the
// new order names old in its "replaces" field (RFC 9773 §5), which lets
// the CA tie the two (Let's Encrypt exempts such renewals from its
// new-order limits). A CA that refuses the field for that certificate
// gets the order again without it.
func (m *Manager) ObtainCSRReplacing(ctx context.Context, id string, csr *x509.CertificateRequest, names []string, old *x509.Certificate) (CSRCertificate, error) {
	if m.dns == nil {
		return CSRCertificate{}, errors.New("obtain for a CSR: dns-01 is not configured (Config.DNSProvider)")
	}
	if strings.Contains(id, "/") || storage.CheckKey(certstore.IssueLock(id)) != nil {
		return CSRCertificate{}, fmt.Errorf("obtain for a CSR: %q is not a valid identifier", id)
	}
	if csr == nil {
		return CSRCertificate{}, errors.New("obtain for a CSR: no CSR")
	}
	if err := csr.CheckSignature(); err != nil {
		return CSRCertificate{}, fmt.Errorf("obtain for a CSR: %w", err)
	}
	names, err := normalizeNames(names)
	if err != nil {
		return CSRCertificate{}, fmt.Errorf("obtain for a CSR: %w", err)
	}
	var out CSRCertificate
	err = m.underIssueLock(ctx, id, func(ctx context.Context) (err error) {
		out, err = m.obtainCSRLocked(ctx, id, csr, names, old)
		return err
	})
	return out, err
}

// obtainCSRLocked is ObtainCSR under the lock.
func (m *Manager) obtainCSRLocked(ctx context.Context, id string, csr *x509.CertificateRequest, names []string, old *x509.Certificate) (CSRCertificate, error) {
	req := issuance.Request{ID: id, Names: names, Challenge: DNS01, CSR: csr}
	if old != nil {
		if dir, err := m.client.Directory(ctx); err == nil && dir.RenewalInfo {
			if ariID, err := acmeclient.CertID(old); err == nil {
				req.Replaces = ariID
			}
		}
	}
	c, flow, err := m.order(ctx, req, nil)
	if err != nil {
		return CSRCertificate{}, fmt.Errorf("obtain %s: %w", id, err)
	}
	out := CSRCertificate{Fullchain: []byte(c.ChainPEM)}
	if p, err := m.store.LoadProgress(ctx, id); err == nil {
		out.OrderURL = p.OrderURL
	}
	if err := flow.Done(ctx, id); err != nil {
		m.log.Warn("forget order progress", "cert", id, "error", err)
	}
	if b, _ := pem.Decode(out.Fullchain); b != nil {
		out.Leaf, err = x509.ParseCertificate(b.Bytes)
	}
	if out.Leaf == nil {
		return CSRCertificate{}, fmt.Errorf("obtain %s: the issued chain does not parse: %v", id, err)
	}
	if ri := c.RenewalInfo; ri != nil {
		out.RenewalStart, out.RenewalEnd = ri.Start, ri.End
	}
	return out, nil
}
