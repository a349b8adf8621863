// Package solvers answers ACME challenges: http-01 through an HTTP
// handler, tls-alpn-01 through a TLS certificate (RFC 8737), and dns-01
// through a provider. Answers are kept in storage, so any process sharing
// the storage can answer a challenge another process presented.
package solvers

import (
	"context"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// Solver makes a challenge answerable and takes the answer away again.
//
// Present MUST make the answer available to the CA before it returns (or,
// for solvers that also implement Waiter, before Wait returns). Answers
// MUST be keyed by what makes them unique (the token, or the identifier
// and key authorization), so that answers to different challenges never
// replace each other, and held per owner (see WithOwner): presenting an
// answer its owner already holds changes nothing, and CleanUp MUST remove
// only the claim of its own owner, leaving the answer in place while
// another owner holds it. CleanUp MUST NOT fail if the answer was never
// added. Both MUST honour ctx cancellation and be safe for concurrent use.
type Solver interface {
	Present(ctx context.Context, ch acmeclient.Challenge) error
	CleanUp(ctx context.Context, ch acmeclient.Challenge) error
}

// Waiter is implemented by solvers whose answers take time to become
// visible (dns-01 propagation). The issuance flow presents every challenge
// of an order first, then calls Wait for each, then asks the CA to
// validate.
type Waiter interface {
	Wait(ctx context.Context, ch acmeclient.Challenge) error
}

// Exclusive is implemented by solvers that can serve only one answer per
// identifier at a time (tls-alpn-01, whose validation names nothing but
// the identifier). The issuance flow calls Exclusive with the challenges
// of an order before presenting any of them and calls release after it
// cleaned them up.
//
// Exclusive MUST wait until no other holder, in this or any process
// sharing the solver's storage, has an identifier of chs, and MUST take
// the identifiers in an order that is the same for every caller, so that
// two orders for overlapping names never wait for each other in a circle.
// It MUST return ctx's error if ctx ends first, holding nothing then.
// release MUST be safe to call more than once.
type Exclusive interface {
	Exclusive(ctx context.Context, chs []acmeclient.Challenge) (release func(), err error)
}

// MaxTokenLen bounds the challenge tokens we accept; RFC 8555 tokens carry
// at least 128 bits, and CAs use 43 characters.
const MaxTokenLen = 128

// ValidToken reports whether tok is a plausible ACME token: 1 to
// MaxTokenLen characters of the base64url alphabet, no padding.
func ValidToken(tok string) bool {
	if len(tok) == 0 || len(tok) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
