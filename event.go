package tlspilot

import (
	"errors"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// EventType says what happened to a certificate.
type EventType string

// The event types.
const (
	// EventObtained: a first certificate was obtained and is in service.
	EventObtained EventType = "obtained"
	// EventRenewed: a renewed certificate replaced the one in service.
	EventRenewed EventType = "renewed"
	// EventLoaded: a certificate stored by another process was taken
	// into service.
	EventLoaded EventType = "loaded"
	// EventFailed: an attempt failed; Err and Problem say why, RetryAt
	// when the next attempt is due. The certificate in service, if any,
	// stays in service.
	EventFailed EventType = "renew-failed"
	// EventExpiring: the certificate in service is inside its warning
	// window (Config.WarnWindow) and renewal keeps failing; sent at most
	// once a day per certificate, with Err the last failure.
	EventExpiring EventType = "expiring"
	// EventExpired: the certificate in service has expired (sent once per
	// certificate).
	EventExpired EventType = "expired"
	// EventRevoked: the certificate was revoked at the CA (Manager.Revoke).
	EventRevoked EventType = "revoked"
)

// Event reports progress on one certificate. Config.OnEvent receives
// each by value with its own copy of Names and Problem: a handler may
// sort, change or keep them without changing what the Manager orders or
// serves.
type Event struct {
	Type     EventType
	CertID   string
	Names    []string // the certificate's names, the primary one first
	KeyType  KeyType
	Time     time.Time // when it happened; for EventFailed, when the attempt failed, which RetryAt counts from
	NotAfter time.Time // of the certificate in service
	Attempt  int       // consecutive failures so far, for EventFailed
	RetryAt  time.Time // next attempt, for EventFailed
	Err      error     // for EventFailed
	Problem  *Problem  // the CA's problem document, when it sent one
}

// Problem is an ACME problem document (RFC 8555 §6.7) as the CA sent it,
// with how tlspilot classified it.
type Problem struct {
	Type       string    // e.g. "urn:ietf:params:acme:error:rateLimited"
	Detail     string    // the CA's explanation
	Status     int       // HTTP status
	RetryAfter time.Time // the CA's Retry-After, if any
	// Class is one of "transient", "bad-nonce", "rate-limited",
	// "bad-order", "bad-account", "canceled".
	Class string
}

// problemOf extracts the ACME problem carried by err, if any.
func problemOf(err error) *Problem {
	var e *acmeclient.Error
	if !errors.As(err, &e) {
		return nil
	}
	return &Problem{Type: e.Type, Detail: e.Detail, Status: e.Status, RetryAfter: e.RetryAfter, Class: e.Class.String()}
}
