package acmeclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Class sorts failures by what the caller should do next.
type Class int

const (
	// Transient failures (network errors, server errors, unknown causes)
	// are retried later with exponential backoff.
	Transient Class = iota
	// BadNonce means the CA refused the anti-replay nonce; retry at once.
	BadNonce
	// RateLimited means the CA asked us to wait; retry no sooner than
	// RetryAfter.
	RateLimited
	// BadOrder means this order cannot succeed (bad CSR, rejected or
	// unsupported identifier, failed validation, CAA): give it up, report,
	// and try a new order only after backoff.
	BadOrder
	// BadAccount means the account itself is unusable (deactivated,
	// revoked, unknown, terms or external binding required): no order can
	// succeed until the account is looked at again, or replaced.
	BadAccount
	// Canceled means the caller's context was canceled. (A deadline that
	// passed, such as a request timing out, is Transient.)
	Canceled
)

// String names the class for logs.
func (c Class) String() string {
	switch c {
	case BadNonce:
		return "bad-nonce"
	case RateLimited:
		return "rate-limited"
	case BadOrder:
		return "bad-order"
	case BadAccount:
		return "bad-account"
	case Canceled:
		return "canceled"
	}
	return "transient"
}

// Error is a failed call to the CA. When the CA answered with a problem
// document, Type, Detail and Status carry it.
type Error struct {
	Op          string    // what we were doing, e.g. "new order"
	Type        string    // ACME problem type, e.g. "urn:ietf:params:acme:error:rateLimited"
	Detail      string    // the CA's detail text
	Status      int       // HTTP status
	Subproblems []string  // identifier: detail, for compound problems
	RetryAfter  time.Time // the CA's Retry-After, if it sent one
	Class       Class
	Err         error // the underlying error
}

// Error formats the failure with its operation and problem.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Type != "" {
		b.WriteString(strings.TrimPrefix(e.Type, acme.ProblemTypeNamespace))
		if e.Status != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.Status)
		}
		if e.Detail != "" {
			b.WriteString(": ")
			b.WriteString(e.Detail)
		}
		for _, sp := range e.Subproblems {
			b.WriteString("; ")
			b.WriteString(sp)
		}
	} else if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if !e.RetryAfter.IsZero() {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ProblemShort returns the problem type without the ACME namespace.
func (e *Error) ProblemShort() string {
	return strings.TrimPrefix(e.Type, acme.ProblemTypeNamespace)
}

// wrap turns an error from the protocol library into an *Error.
func wrap(op string, err error, s *sink) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err}
	if s != nil {
		e.RetryAfter = s.get()
	}
	var p acme.Problem
	if errors.As(err, &p) {
		e.Type, e.Detail, e.Status = p.Type, p.Detail, p.Status
		for _, sp := range p.Subproblems {
			e.Subproblems = append(e.Subproblems, sp.Identifier.Value+": "+strings.TrimPrefix(sp.Type, acme.ProblemTypeNamespace)+" "+sp.Detail)
		}
	}
	e.Class = classify(op, e.Type, e.Status, err)
	return e
}

// Operations whose "unauthorized" answer is about the account, not about
// an identifier: the CA refuses the account itself (RFC 8555 §7.3.6:
// a deactivated account's requests are refused with "unauthorized").
const (
	opNewOrder   = "new order"
	opGetAccount = "get account"
	opRegister   = "register account"
)

// classify decides what a failure of op means for retrying.
func classify(op, typ string, status int, err error) Class {
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Transient // a request to the CA timed out
	}
	if errors.Is(err, errBadNonceStorm) {
		return BadNonce
	}
	short := strings.TrimPrefix(typ, acme.ProblemTypeNamespace)
	if short == "unauthorized" && (op == opNewOrder || op == opGetAccount || op == opRegister) {
		return BadAccount
	}
	switch short {
	case "badNonce":
		return BadNonce
	case "rateLimited":
		return RateLimited
	case "serverInternal", "orderNotReady":
		return Transient
	case "badCSR", "badPublicKey", "badSignatureAlgorithm", "rejectedIdentifier",
		"unsupportedIdentifier", "caa", "dns", "connection", "tls", "incorrectResponse",
		"compound", "malformed", "alreadyReplaced", "unauthorized":
		return BadOrder
	case "accountDoesNotExist", "userActionRequired", "externalAccountRequired",
		"invalidContact", "unsupportedContact":
		return BadAccount
	}
	if status == 429 {
		return RateLimited
	}
	if status >= 400 && status < 500 && typ != "" {
		return BadOrder
	}
	return Transient
}

// ClassOf returns the class of err: that of the *Error it wraps, Canceled
// for a canceled context, Transient otherwise.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Transient
}

// RetryAfterOf returns the CA's Retry-After carried by err, if any.
func RetryAfterOf(err error) time.Time {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return time.Time{}
}
