// Package ocspclient asks an OCSP responder (RFC 6960) about one
// certificate, verifies the answer, and keeps verified answers in memory
// and in a storage.Storage until they go stale.
//
// It is shared by OCSP stapling of serve's own certificates and by the
// revocation check of client certificates (internal/clientauth). Every
// answer it hands out has passed Parse: signed by the issuer or by a
// responder the issuer delegated (RFC 6960 §4.2.2.2), about exactly the
// certificate asked for, and fresh. Requests carry no nonce (RFC 5019
// §2.1.1, as most responders precompute their answers), so a nonce is
// never required in an answer either.
package ocspclient

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// MaxClockSkew is how far in the future a response's thisUpdate may lie
// (the responder's clock running ahead of ours) before Parse refuses it.
const MaxClockSkew = 5 * time.Minute

// DefaultValidity is how long a response without nextUpdate is taken as
// valid after its thisUpdate. RFC 6960 §4.2.2.1 says such a responder
// always has newer information; an hour keeps it from being asked on every
// handshake while an answer about a revocation still arrives soon.
const DefaultValidity = time.Hour

// ErrStale is wrapped by the error of Parse for a response whose
// nextUpdate (or thisUpdate + DefaultValidity) has passed.
var ErrStale = errors.New("ocsp response is stale")

// ErrNotYetValid is wrapped by the error of Parse for a response whose
// thisUpdate lies more than MaxClockSkew in the future.
var ErrNotYetValid = errors.New("ocsp response not yet valid")

// ErrBadSignature is wrapped by the error of Parse for a response not
// signed by the issuer nor by a responder certificate the issuer delegated.
var ErrBadSignature = errors.New("ocsp response signature not trusted")

// ErrWrongCertificate is wrapped by the error of Parse for a response
// about another certificate (serial, issuer name hash or issuer key hash
// differ from the certificate asked about).
var ErrWrongCertificate = errors.New("ocsp response is about another certificate")

// ErrWrongSerial is wrapped by the error of Parse for a response with no
// answer about the serial number asked about. It wraps
// ErrWrongCertificate.
var ErrWrongSerial = fmt.Errorf("%w: no answer for the serial asked about", ErrWrongCertificate)

// ErrMalformed is wrapped, with the decoder's error, by the error of
// Parse for bytes that do not decode as an OCSP response (an HTML error
// page, a truncated body, another format).
var ErrMalformed = errors.New("the responder's answer is not an OCSP response")

// errUnusable is wrapped by the error of Parse for a decoded response
// that cannot be used for another reason than the exported errors say
// (no thisUpdate, an unsupported critical extension …).
var errUnusable = errors.New("ocsp response unusable")

// Status is a certificate's status in an OCSP response (RFC 6960 §2.2).
type Status int

// The three statuses of RFC 6960 §2.2.
const (
	Good Status = iota
	Revoked
	Unknown
)

// String returns "good", "revoked" or "unknown".
func (s Status) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Response is a verified OCSP response about one certificate.
type Response struct {
	// Raw is the DER-encoded OCSPResponse as the responder sent it: what a
	// server staples (tls.Certificate.OCSPStaple).
	Raw []byte
	// Status is the certificate's status.
	Status Status
	// ThisUpdate is when the responder knew the status to be correct.
	ThisUpdate time.Time
	// NextUpdate is when newer information will be available; zero if the
	// responder gave none (Expires then counts DefaultValidity).
	NextUpdate time.Time
	// RevokedAt and Reason are set when Status is Revoked. Reason is the
	// CRLReason code of RFC 5280 §5.3.1 (ocsp.KeyCompromise …), 0 when
	// the responder gave none.
	RevokedAt time.Time
	Reason    int
	// ID names the certificate the response is about.
	ID CertID
}

// Expires returns the moment the response goes stale: its nextUpdate, or
// thisUpdate + DefaultValidity when it has none.
func (r *Response) Expires() time.Time {
	if r.NextUpdate.IsZero() {
		return r.ThisUpdate.Add(DefaultValidity)
	}
	return r.NextUpdate
}

// RefreshAt returns when a newer response should be fetched: half-way
// through the response's validity (thisUpdate to Expires).
func (r *Response) RefreshAt() time.Time {
	return r.ThisUpdate.Add(r.Expires().Sub(r.ThisUpdate) / 2)
}

// Fresh reports whether the response is still valid at now.
func (r *Response) Fresh(now time.Time) bool {
	return now.Before(r.Expires())
}

// Parse decodes and verifies a DER-encoded OCSP response about leaf,
// issued by issuer, as of now. It returns an error unless the response
// decodes (else the error wraps ErrMalformed), is successful (else
// ocsp.ResponseError), is signed by issuer or by a delegated responder
// certificate that issuer signed, that carries id-kp-OCSPSigning and is
// valid at now (RFC 6960 §4.2.2.2; else ErrBadSignature), answers for
// leaf's certificate ID (serial, issuer name hash and issuer key hash,
// RFC 6960 §4.1.1; else ErrWrongCertificate, and ErrWrongSerial when no
// answer names the serial), has a thisUpdate at most MaxClockSkew in the
// future (else ErrNotYetValid) and has not gone stale (nextUpdate, or
// thisUpdate + DefaultValidity, after now; RFC 6960 §3.2 item 5; else
// ErrStale). A status of revoked or unknown is no error: it is in
// Response.Status.
func Parse(raw []byte, leaf, issuer *x509.Certificate, now time.Time) (*Response, error) {
	if leaf == nil || issuer == nil {
		return nil, errors.New("ocsp: parse: leaf and issuer certificates are required")
	}
	// Parsed without the issuer: the package would check a delegated
	// responder's signature but not its extended key usage, and refuses a
	// response that embeds the issuer itself; verifyResponder does both.
	r, err := ocsp.ParseResponseForCert(raw, leaf, nil)
	if err != nil {
		return nil, fmt.Errorf("ocsp: %w", parseFailure(err))
	}
	if err := verifyResponder(r, issuer, now); err != nil {
		return nil, fmt.Errorf("ocsp: %w", err)
	}
	id := IDOf(leaf, issuer)
	if err := matchCertID(raw, r.IssuerHash, leaf, issuer); err != nil {
		return nil, fmt.Errorf("ocsp: %w", err)
	}
	resp := &Response{
		Raw:        raw,
		Status:     statusOf(r.Status),
		ThisUpdate: r.ThisUpdate,
		NextUpdate: r.NextUpdate,
		RevokedAt:  r.RevokedAt,
		Reason:     r.RevocationReason,
		ID:         id,
	}
	return resp, checkTimes(resp, now)
}

// parseFailure gives an error of ocsp.ParseResponseForCert the error of
// this package that says what was wrong, keeping it as the cause: an
// unsuccessful answer (ocsp.ResponseError, named as RFC 6960 §4.2.1
// does), bytes that are no OCSP response (ErrMalformed), no answer about
// the serial (ErrWrongSerial), a bad signature by an embedded responder
// certificate (ErrBadSignature).
func parseFailure(err error) error {
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("responder answered %s: %w", responseStatusName(re.Status), err)
	}
	var pe ocsp.ParseError
	if !errors.As(err, &pe) { // from encoding/asn1 or x509.ParseCertificate
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// The ocsp package's ParseError is a string: its texts are the only
	// way to tell its causes apart.
	switch msg := string(pe); {
	case msg == "no response matching the supplied certificate":
		return fmt.Errorf("%w: %w", ErrWrongSerial, err)
	case strings.HasPrefix(msg, "bad signature on embedded certificate"):
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	case msg == "trailing data in OCSP response", msg == "bad OCSP response type":
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %w", errUnusable, err)
}

// responseStatusName returns the name RFC 6960 §4.2.1 gives an
// unsuccessful OCSPResponseStatus ("tryLater" …).
func responseStatusName(s ocsp.ResponseStatus) string {
	switch s {
	case ocsp.Malformed:
		return "malformedRequest"
	case ocsp.InternalError:
		return "internalError"
	case ocsp.TryLater:
		return "tryLater"
	case ocsp.SignatureRequired:
		return "sigRequired"
	case ocsp.Unauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("status %d", int(s))
}

// statusOf maps the ocsp package's status.
func statusOf(s int) Status {
	switch s {
	case ocsp.Good:
		return Good
	case ocsp.Revoked:
		return Revoked
	}
	return Unknown
}

// checkTimes refuses a response from the future or one gone stale.
func checkTimes(r *Response, now time.Time) error {
	if r.ThisUpdate.IsZero() {
		return fmt.Errorf("ocsp: %w: no thisUpdate", errUnusable)
	}
	if r.ThisUpdate.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("ocsp: thisUpdate %s: %w", r.ThisUpdate.UTC().Format(time.RFC3339), ErrNotYetValid)
	}
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(r.ThisUpdate) {
		return fmt.Errorf("ocsp: %w: nextUpdate before thisUpdate", errUnusable)
	}
	if !r.Fresh(now) {
		return fmt.Errorf("ocsp: valid until %s: %w", r.Expires().UTC().Format(time.RFC3339), ErrStale)
	}
	return nil
}

// verifyResponder checks who signed r (RFC 6960 §4.2.2.2): the issuer
// itself, or a certificate the issuer signed for id-kp-OCSPSigning. When
// r embeds a certificate, the ocsp package has already checked that it
// made the signature.
func verifyResponder(r *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := r.Certificate
	if signer == nil || bytes.Equal(signer.Raw, issuer.Raw) {
		if err := r.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("%w: not signed by the issuer: %w", ErrBadSignature, err)
		}
		return nil
	}
	if err := signer.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("%w: responder certificate not signed by the issuer: %w", ErrBadSignature, err)
	}
	if !hasOCSPSigning(signer) {
		return fmt.Errorf("%w: responder certificate lacks id-kp-OCSPSigning", ErrBadSignature)
	}
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return fmt.Errorf("%w: responder certificate not valid now", ErrBadSignature)
	}
	return nil
}

// hasOCSPSigning reports whether c's extended key usage names
// id-kp-OCSPSigning.
func hasOCSPSigning(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			return true
		}
	}
	return false
}
