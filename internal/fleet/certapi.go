package fleet

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/oneline"
)

// PathCertificate takes an agent's CSR for one of its certificates and
// answers with the certificate once the issuer has obtained it. The
// agent sends the same CSR again until the answer is final: the issuer
// keys the work by the agent and the CSR's names, so a repeated request
// never places a second order.
const PathCertificate = "/v1/certificate"

// CertificateRequest is the body of a POST to PathCertificate.
type CertificateRequest struct {
	// CSR is the agent's certificate request, DER (base64 in JSON). Its
	// DNS names are the names of the certificate; all must be in the
	// agent's policy, written in their normalised form but for letter
	// case (no trailing dot), and a common name, if any, must be one of
	// them: the CA compares the CSR's names with the order's.
	CSR []byte `json:"csr"`
	// ReuseKey says the agent keeps this certificate's key across
	// renewals ("reuse_key" in its config). Without it, a key the issuer
	// has seen in an earlier request is refused.
	ReuseKey bool `json:"reuse_key,omitempty"`
	// Replaces is the serial number (hexadecimal) of the certificate
	// this request renews, as the agent holds it; empty for a first
	// certificate. The same CSR sent again gets the certificate already
	// obtained for it unless Replaces names that very certificate (a
	// renewal that keeps the key and so may send the same CSR).
	Replaces string `json:"replaces,omitempty"`
}

// The values of CertificateResponse.Status.
const (
	// CertProcessing: the issuer is obtaining the certificate; ask again
	// after RetryAfter seconds with the same CSR.
	CertProcessing = "processing"
	// CertValid: Fullchain holds the certificate.
	CertValid = "valid"
	// CertFailed: the issuer could not obtain it (Error says why); a
	// new request with the same CSR starts again, after RetryAfter.
	CertFailed = "failed"
)

// CertificateResponse answers PathCertificate. A request refused by
// policy is no CertificateResponse but an HTTP 403 whose error starts
// with "policy".
type CertificateResponse struct {
	// Status is CertProcessing, CertValid or CertFailed.
	Status string `json:"status"`
	// RetryAfter is how long to wait before asking again, in seconds.
	RetryAfter int `json:"retry_after,omitempty"`
	// Error says why the issuer could not obtain the certificate.
	Error string `json:"error,omitempty"`
	// Fullchain is the certificate and its chain, PEM, leaf first.
	Fullchain string `json:"fullchain,omitempty"`
	// RenewAfter and RenewBefore bound when the agent should ask for the
	// next certificate: the CA's renewal window (RFC 9773) when it gave
	// one, else the last third of the certificate's lifetime.
	RenewAfter  time.Time `json:"renew_after,omitzero"`
	RenewBefore time.Time `json:"renew_before,omitzero"`
}

// Certificate sends a first request for csr (DER) to the issuer: Request
// with no certificate to replace.
func (c *Client) Certificate(ctx context.Context, csr []byte, reuseKey bool) (*CertificateResponse, error) {
	return c.Request(ctx, CertificateRequest{CSR: csr, ReuseKey: reuseKey})
}

// Request sends req to the issuer and returns its answer;
// CertProcessing means ask again later with the same request. A refusal
// (policy, revoked agent) is an error carrying the issuer's message.
// The issuer's text (the refusal, Status, Error) is escaped by
// oneline.Escape.
func (c *Client) Request(ctx context.Context, req CertificateRequest) (*CertificateResponse, error) {
	var resp CertificateResponse
	if err := c.do(ctx, http.MethodPost, PathCertificate, req, &resp); err != nil {
		return nil, fmt.Errorf("fleet: certificate: %w", err)
	}
	resp.Status, resp.Error = oneline.Escape(resp.Status), oneline.Escape(resp.Error)
	return &resp, nil
}

// Orderer obtains certificates for CSRs from the CA: the issuer's ACME
// engine, *tlspilot.Manager.
type Orderer interface {
	// ObtainCSRReplacing obtains a certificate for csr's key and names,
	// with dns-01. id names the work in the engine's storage: an order
	// saved under id by an earlier, interrupted call is resumed rather
	// than placed again. old, if not nil, is the certificate the new one
	// replaces (named in the order, RFC 9773 §5).
	ObtainCSRReplacing(ctx context.Context, id string, csr *x509.CertificateRequest, names []string, old *x509.Certificate) (tlspilot.CSRCertificate, error)
}
