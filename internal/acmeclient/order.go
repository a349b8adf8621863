package acmeclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Identifier is what a certificate is for: type "dns" or "ip".
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Order is the CA's view of an order.
type Order struct {
	URL            string
	Status         string // pending, ready, processing, valid, invalid
	Identifiers    []Identifier
	Authorizations []string
	Finalize       string
	Certificate    string
	Expires        time.Time
	Problem        *Error // set when the order is invalid
}

// NewOrderOptions are the optional fields of a new order.
type NewOrderOptions struct {
	Profile  string // ACME profile name, empty for the CA's default
	Replaces string // ARI certificate ID of the certificate this one replaces
}

// NewOrder asks the CA for a new order.
func (c *Client) NewOrder(ctx context.Context, acct Account, ids []Identifier, opts NewOrderOptions) (Order, error) {
	req := acme.Order{Profile: opts.Profile, Replaces: opts.Replaces}
	for _, id := range ids {
		req.Identifiers = append(req.Identifiers, acme.Identifier{Type: id.Type, Value: id.Value})
	}
	ctx, s := withSink(ctx, EndpointNewOrder)
	o, err := c.c.NewOrder(ctx, acct.acme(), req)
	if err != nil {
		return Order{}, wrap(opNewOrder, err, s)
	}
	if o.Location == "" {
		return Order{}, &Error{Op: opNewOrder, Err: errors.New("CA returned no order URL")}
	}
	return fromOrder(o), nil
}

// GetOrder fetches the current state of an order.
func (c *Client) GetOrder(ctx context.Context, acct Account, url string) (Order, error) {
	ctx, s := withSink(ctx, EndpointOrder)
	o, err := c.c.GetOrder(ctx, acct.acme(), acme.Order{Location: url})
	if err != nil {
		return Order{}, wrap("get order", err, s)
	}
	o.Location = url
	return fromOrder(o), nil
}

// Finalize sends the CSR and waits until the order is valid or invalid,
// polling at most Config.PollTimeout (RFC 8555 §7.4). The CA's
// Retry-After is followed, bounded to [Config.PollInterval,
// Config.PollTimeout]. An order that turns valid without a certificate
// URL is an *Error of class BadOrder wrapping ErrNoCertificateURL.
func (c *Client) Finalize(ctx context.Context, acct Account, o Order, csrDER []byte) (Order, error) {
	ctx, cancel := c.pollContext(ctx, "order to be issued")
	defer cancel()
	ctx, s := withSink(ctx, EndpointFinalize)
	got, err := c.c.FinalizeOrder(ctx, acct.acme(), toOrder(o), csrDER)
	if got.Location == "" {
		got.Location = o.URL
	}
	out := fromOrder(got)
	if err != nil {
		if ctx.Err() == nil && err.Error() == acmezOrderPollEnd {
			err = fmt.Errorf("the order is still %s at the CA after the poll timeout of %v", out.Status, c.pollTimeout)
		}
		return out, wrap(opFinalize, pollErr(ctx, err), s)
	}
	if out.Status == StatusValid && out.Certificate == "" {
		return out, &Error{Op: opFinalize, Class: BadOrder, Err: ErrNoCertificateURL}
	}
	return out, nil
}

const opFinalize = "finalize order"

// acmezOrderPollEnd is the text of the error acmez returns when an order
// is not finished by its poll timeout; Finalize says what it means.
const acmezOrderPollEnd = "order took too long"

// ErrNoCertificateURL is wrapped by the *Error (class BadOrder) of
// Finalize and Certificate when the CA says an order is valid but names
// no certificate to download: that order cannot lead to a certificate,
// and a new one is needed.
var ErrNoCertificateURL = errors.New("the CA's order is valid but names no certificate URL (RFC 8555 §7.1.3)")

// Chain is a downloaded certificate chain.
type Chain struct {
	PEM []byte // leaf first
	// RenewalInfo is the CA's renewal window for the leaf, asked for
	// while downloading (RFC 9773 §4.2); nil when the CA offers no ARI or
	// gave no usable window.
	RenewalInfo *RenewalInfo
}

// Certificate downloads the PEM chain at url, leaf first, with the CA's
// renewal information for it when the CA offers ARI. An empty url (a
// valid order that names no certificate) is an *Error of class BadOrder.
// An answer longer than maxChainBytes fails.
func (c *Client) Certificate(ctx context.Context, acct Account, url string) (Chain, error) {
	if url == "" {
		return Chain{}, &Error{Op: "download certificate", Class: BadOrder, Err: ErrNoCertificateURL}
	}
	ctx, s := withSink(ctx, EndpointCertificate)
	chains, err := c.c.GetCertificateChain(ctx, acct.acme(), url)
	if err != nil {
		return Chain{}, wrap("download certificate", err, s)
	}
	if len(chains) == 0 || len(chains[0].ChainPEM) == 0 {
		return Chain{}, &Error{Op: "download certificate", Err: errors.New("CA returned no certificate")}
	}
	out := Chain{PEM: chains[0].ChainPEM}
	if ri := chains[0].RenewalInfo; ri != nil && ri.HasWindow() {
		out.RenewalInfo = fromRenewalInfo(*ri)
	}
	return out, nil
}

func fromOrder(o acme.Order) Order {
	out := Order{
		URL:            o.Location,
		Status:         o.Status,
		Authorizations: o.Authorizations,
		Finalize:       o.Finalize,
		Certificate:    o.Certificate,
		Expires:        o.Expires,
	}
	for _, id := range o.Identifiers {
		out.Identifiers = append(out.Identifiers, Identifier{Type: id.Type, Value: id.Value})
	}
	if o.Error != nil {
		out.Problem = wrap("order", *o.Error, nil).(*Error)
	}
	return out
}

func toOrder(o Order) acme.Order {
	out := acme.Order{
		Location:       o.URL,
		Status:         o.Status,
		Authorizations: o.Authorizations,
		Finalize:       o.Finalize,
		Certificate:    o.Certificate,
	}
	for _, id := range o.Identifiers {
		out.Identifiers = append(out.Identifiers, acme.Identifier{Type: id.Type, Value: id.Value})
	}
	return out
}

// Revoke asks the CA to revoke leaf (RFC 8555 §7.6), signed with the
// account's key, giving reason, a CRLReason code (RFC 5280 §5.3.1).
func (c *Client) Revoke(ctx context.Context, acct Account, leaf *x509.Certificate, reason int) error {
	ctx, s := withSink(ctx, EndpointRevoke)
	err := c.c.RevokeCertificate(ctx, acct.acme(), leaf, nil, reason)
	return wrap("revoke certificate", err, s)
}
