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
)

// Event reports progress on one certificate.
type Event struct {
	Type     EventType
	CertID   string
	Names    []string
	KeyType  KeyType
	Time     time.Time
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

// CertStatus is the state of one managed certificate.
type CertStatus struct {
	ID          string
	Names       []string
	KeyType     KeyType
	Serving     bool      // a CA-issued certificate is in service (not the temporary one)
	NotBefore   time.Time // of the certificate in service
	NotAfter    time.Time
	Issuer      string
	NextRenewal time.Time // when the next attempt or check is due
	Renewing    bool      // an attempt is under way
	Attempts    int       // consecutive failed attempts
	LastError   string
	LastProblem string // ACME problem type of the last failure
	LastAttempt time.Time
}
