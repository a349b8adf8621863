package acmeclient

import (
	"context"
	"fmt"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Authz is an authorization: proof, still to give or given, that the
// account controls one identifier.
type Authz struct {
	URL        string
	Status     string // StatusPending, StatusValid, StatusInvalid, StatusDeactivated, StatusExpired or StatusRevoked
	Identifier Identifier
	Wildcard   bool
	Challenges []Challenge
	Problem    *Error // the failed challenge's problem, when invalid
}

// Challenge is one way of proving control.
type Challenge struct {
	Type             string // http-01, tls-alpn-01, dns-01
	URL              string
	Status           string // StatusPending, StatusProcessing, StatusValid or StatusInvalid
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
	ctx, s := withSink(ctx, EndpointAuthorization)
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
	ctx, s := withSink(ctx, EndpointChallenge)
	_, err := c.c.InitiateChallenge(ctx, acct.acme(), acme.Challenge{URL: ch.URL, Type: ch.Type, Token: ch.Token})
	return wrap("accept "+ch.Type+" challenge for "+ch.Identifier.Value, err, s)
}

// WaitAuthz polls an authorization until it is valid or has failed. A
// failed validation is returned as an *Error of class BadOrder carrying
// the challenge's problem. Polls start 50ms apart and double up to 2s,
// bounded by Config.PollTimeout: most CAs validate within a second.
func (c *Client) WaitAuthz(ctx context.Context, acct Account, a Authz) (Authz, error) {
	op := "validate " + a.Identifier.Value
	deadline := time.Now().Add(c.pollTimeout)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, wrap(op, ctx.Err(), nil)
		case <-t.C:
		}
		got, err := c.GetAuthz(ctx, acct, a.URL)
		if err != nil {
			return a, err
		}
		switch got.Status {
		case StatusValid:
			return got, nil
		case StatusPending, StatusProcessing:
			if time.Now().After(deadline) {
				return got, &Error{Op: op, Class: Transient, Err: fmt.Errorf("authorization still %s after %v", got.Status, c.pollTimeout)}
			}
			continue
		}
		if got.Problem != nil {
			p := *got.Problem
			p.Op = op
			return got, &p
		}
		return got, &Error{Op: op, Class: BadOrder, Err: fmt.Errorf("authorization is %s", got.Status)}
	}
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
