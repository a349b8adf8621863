package acmeclient

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// RenewalInfo is the CA's suggested renewal window (RFC 9773).
type RenewalInfo struct {
	Start, End time.Time
	// RetryAfter is when the CA suggests asking again; zero if it did
	// not say.
	RetryAfter time.Time
}

// ErrNoARI is returned by RenewalInfo when the CA does not offer ARI.
var ErrNoARI = errors.New("CA does not offer renewal information (ARI)")

// RenewalInfo asks the CA when to renew leaf.
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (RenewalInfo, error) {
	dir, err := c.Directory(ctx)
	if err != nil {
		return RenewalInfo{}, err
	}
	if !dir.RenewalInfo {
		return RenewalInfo{}, ErrNoARI
	}
	ctx, s := withSink(ctx, EndpointRenewalInfo)
	ri, err := c.c.GetRenewalInfo(ctx, leaf)
	if err != nil {
		return RenewalInfo{}, wrap("renewal info", err, s)
	}
	return *fromRenewalInfo(ri), nil
}

func fromRenewalInfo(ri acme.RenewalInfo) *RenewalInfo {
	out := &RenewalInfo{Start: ri.SuggestedWindow.Start, End: ri.SuggestedWindow.End}
	if ri.RetryAfter != nil {
		out.RetryAfter = *ri.RetryAfter
	}
	return out
}

// CertID returns the ARI identifier of leaf, used in "replaces".
func CertID(leaf *x509.Certificate) (string, error) {
	return acme.ARIUniqueIdentifier(leaf)
}
