package acmeclient

import (
	"context"

	"github.com/mholt/acmez/v3/acme"
)

// Authz is an authorization: proof, still to give or given, that the
// account controls one identifier.
type Authz struct {
	URL        string
	Status     string // pending, valid, invalid, deactivated, expired, revoked
	Identifier Identifier
	Wildcard   bool
	Challenges []Challenge
	Problem    *Error // the failed challenge's problem, when invalid
}

// Challenge is one way of proving control.
type Challenge struct {
	Type             string // http-01, tls-alpn-01, dns-01
	URL              string
	Status           string
	Token            string
	KeyAuthorization string // token + "." + account key thumbprint
	Identifier       Identifier
}

// DNS01Value returns the TXT record value for a dns-01 challenge.
func (ch Challenge) DNS01Value() string {
	return acme.Challenge{KeyAuthorization: ch.KeyAuthorization}.DNS01KeyAuthorization()
}

// GetAuthz fetches an authorization, with each challenge's key
// authorization filled in.
func (c *Client) GetAuthz(ctx context.Context, acct Account, url string) (Authz, error) {
	ctx, s := withSink(ctx)
	a, err := c.c.GetAuthorization(ctx, acct.acme(), url)
	if err != nil {
		return Authz{}, wrap("get authorization", err, s)
	}
	if a.Location == "" {
		a.Location = url
	}
	return fromAuthz(a), nil
}

// Accept tells the CA the challenge is ready to be validated.
func (c *Client) Accept(ctx context.Context, acct Account, ch Challenge) error {
	ctx, s := withSink(ctx)
	_, err := c.c.InitiateChallenge(ctx, acct.acme(), acme.Challenge{URL: ch.URL, Type: ch.Type, Token: ch.Token})
	return wrap("accept "+ch.Type+" challenge for "+ch.Identifier.Value, err, s)
}

// WaitAuthz polls an authorization until it is valid or has failed. A
// failed validation is returned as an *Error of class BadOrder carrying
// the challenge's problem.
func (c *Client) WaitAuthz(ctx context.Context, acct Account, a Authz) (Authz, error) {
	ctx, s := withSink(ctx)
	got, err := c.c.PollAuthorization(ctx, acct.acme(), acme.Authorization{Location: a.URL})
	out := fromAuthz(got)
	if out.URL == "" {
		out.URL = a.URL
	}
	if err != nil {
		op := "validate " + a.Identifier.Value
		if out.Problem != nil {
			p := *out.Problem
			p.Op = op
			return out, &p
		}
		return out, wrap(op, err, s)
	}
	return out, nil
}

func fromAuthz(a acme.Authorization) Authz {
	out := Authz{
		URL:        a.Location,
		Status:     a.Status,
		Identifier: Identifier{Type: a.Identifier.Type, Value: a.Identifier.Value},
		Wildcard:   a.Wildcard,
	}
	for _, ch := range a.Challenges {
		out.Challenges = append(out.Challenges, Challenge{
			Type:             ch.Type,
			URL:              ch.URL,
			Status:           ch.Status,
			Token:            ch.Token,
			KeyAuthorization: ch.KeyAuthorization,
			Identifier:       out.Identifier,
		})
		if ch.Error != nil && out.Problem == nil {
			out.Problem = wrap("validate "+out.Identifier.Value, *ch.Error, nil).(*Error)
		}
	}
	return out
}
