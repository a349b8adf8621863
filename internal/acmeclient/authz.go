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
	a, _, err := c.getAuthz(ctx, acct, url)
	return a, err
}

// getAuthz is GetAuthz, also returning when the CA asked to be polled
// again (its Retry-After, bounded by the transport; zero if it gave none).
func (c *Client) getAuthz(ctx context.Context, acct Account, url string) (Authz, time.Time, error) {
	ctx, s := withSink(ctx, EndpointAuthorization)
	a, err := c.c.GetAuthorization(ctx, acct.acme(), url)
	if err != nil {
		return Authz{}, time.Time{}, wrap("get authorization", err, s)
	}
	if a.Location == "" {
		a.Location = url
	}
	return fromAuthz(a), s.poll(), nil
}

// Accept tells the CA the challenge is ready to be validated.
func (c *Client) Accept(ctx context.Context, acct Account, ch Challenge) error {
	ctx, s := withSink(ctx, EndpointChallenge)
	_, err := c.c.InitiateChallenge(ctx, acct.acme(), acme.Challenge{URL: ch.URL, Type: ch.Type, Token: ch.Token})
	return wrap("accept "+ch.Type+" challenge for "+ch.Identifier.Value, err, s)
}

// WaitAuthz polls an authorization until it is valid or has failed. A
// failed validation is returned as an *Error of class BadOrder carrying
// the challenge's problem. Polls start 50ms apart and double up to 2s
// (most CAs validate within a second), or are as far apart as the CA's
// Retry-After asks if that is longer (RFC 8555 §7.5.1; bounded to
// Config.PollTimeout), and stop at Config.PollTimeout.
func (c *Client) WaitAuthz(ctx context.Context, acct Account, a Authz) (Authz, error) {
	op := "validate " + a.Identifier.Value
	deadline := time.Now().Add(c.pollTimeout)
	ctx, cancel := c.pollContext(ctx, "authorization of "+a.Identifier.Value)
	defer cancel()
	var retryAt time.Time // the CA's Retry-After on the latest poll
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		t := time.NewTimer(pollWait(time.Now(), delay, retryAt, deadline))
		select {
		case <-ctx.Done():
			t.Stop()
			return a, wrap(op, pollErr(ctx, ctx.Err()), nil)
		case <-t.C:
		}
		got, at, err := c.getAuthz(ctx, acct, a.URL)
		if err != nil {
			if perr := pollErr(ctx, err); perr != err { // the backstop of pollContext
				return a, wrap(op, perr, nil)
			}
			return a, err
		}
		retryAt = at
		switch got.Status {
		case StatusValid:
			return got, nil
		case StatusPending, StatusProcessing:
			if !time.Now().Before(deadline) {
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
