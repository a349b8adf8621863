package acmeclient

import "github.com/mholt/acmez/v3/acme"

// The states of ACME orders, authorizations and challenges (RFC 8555
// §7.1.6), as they appear in Order.Status, Authz.Status and
// Challenge.Status.
const (
	StatusPending     = acme.StatusPending
	StatusReady       = acme.StatusReady
	StatusProcessing  = acme.StatusProcessing
	StatusValid       = acme.StatusValid
	StatusInvalid     = acme.StatusInvalid
	StatusDeactivated = acme.StatusDeactivated
	StatusExpired     = acme.StatusExpired
	StatusRevoked     = acme.StatusRevoked
)
