package clientauth

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
)

// Reason is why a client certificate was refused. The values are short,
// stable words fit for a metric label.
type Reason string

// The reasons of a Refusal.
const (
	// ReasonRevoked: a fresh CRL or OCSP answer says the certificate is
	// revoked.
	ReasonRevoked Reason = "revoked"
	// ReasonUnknown: no fresh CRL or OCSP answer could be had (no source,
	// responder down or too slow, stale or badly signed answers, OCSP
	// status unknown) and Policy.Unknown is deny.
	ReasonUnknown Reason = "unknown"
	// ReasonExpired: the certificate is outside its validity period.
	ReasonExpired Reason = "expired"
	// ReasonDepth: the chain is longer than Policy.VerifyDepth allows.
	ReasonDepth Reason = "depth"
	// ReasonNoCertificate: the client gave no certificate and the mode is
	// require.
	ReasonNoCertificate Reason = "no_certificate"
	// ReasonUntrusted: the certificate was given but not verified against
	// the CAs.
	ReasonUntrusted Reason = "untrusted"
)

// Reasons lists every Reason, for metrics that count refusals by reason.
func Reasons() []Reason {
	return []Reason{ReasonRevoked, ReasonUnknown, ReasonExpired, ReasonDepth, ReasonNoCertificate, ReasonUntrusted}
}

// Refusal is the error of a refused client certificate. Subject and
// Serial name the certificate refused, which in chain mode may be an
// intermediate CA's rather than the client's own (Depth says which: 0 is
// the client's).
type Refusal struct {
	Reason  Reason
	Subject string // RFC 2253 form of the refused certificate's subject
	Serial  string // its serial number, lower-case hex
	Depth   int    // its position in the chain, 0 for the client's own
	Detail  string // for a log line: the source and what it said
	Err     error  // the cause when no answer could be had, else nil
}

// Error says which certificate was refused and why: its subject and
// serial, its depth when not the client's own, the detail and the cause,
// as in
//
//	"CN=bob" serial 1f: crl /etc/ca.crl: revoked at …, reason 1 (keyCompromise)
//
// Without a certificate it is the detail alone ("no client certificate
// given"). It does not begin with "client certificate refused (reason)":
// whoever logs or returns a refusal says that once, with Reason (the
// server's log line and handshake error do), and the error inside it
// must not say it again.
func (r *Refusal) Error() string {
	var parts []string
	if r.Subject != "" || r.Serial != "" {
		who := fmt.Sprintf("%q serial %s", r.Subject, r.Serial)
		if r.Depth > 0 {
			who += fmt.Sprintf(" at depth %d", r.Depth)
		}
		parts = append(parts, who)
	}
	if r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	if r.Err != nil {
		parts = append(parts, r.Err.Error())
	}
	if len(parts) == 0 {
		return string(r.Reason)
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the cause, if any.
func (r *Refusal) Unwrap() error { return r.Err }

// LogValue groups the refusal's fields under fixed keys: reason, subject,
// serial, depth, detail, error.
func (r *Refusal) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("reason", string(r.Reason)),
		slog.String("subject", r.Subject),
		slog.String("serial", r.Serial),
	}
	if r.Depth > 0 {
		attrs = append(attrs, slog.Int("depth", r.Depth))
	}
	if r.Detail != "" {
		attrs = append(attrs, slog.String("detail", r.Detail))
	}
	if r.Err != nil {
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// refuse builds the Refusal of c at depth.
func refuse(reason Reason, c *x509.Certificate, depth int, detail string, err error) *Refusal {
	r := &Refusal{Reason: reason, Depth: depth, Detail: detail, Err: err}
	if c != nil {
		r.Subject = c.Subject.String()
		r.Serial = serialHex(c.SerialNumber)
	}
	return r
}

// serialHex is a serial number in lower-case hex, as logs show it.
func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}

// RefusalReason returns the reason as a string, for a caller that counts
// refusals without importing this package.
func (r *Refusal) RefusalReason() string { return string(r.Reason) }
