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
// for solvers that also implement Waiter, before Wait returns). CleanUp
// MUST remove what Present added and MUST NOT fail if it was never
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
