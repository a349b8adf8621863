package acmeclient

import (
	"context"
	"crypto/x509"
	"errors"
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

// Finalize sends the CSR and waits until the order is valid or invalid.
func (c *Client) Finalize(ctx context.Context, acct Account, o Order, csrDER []byte) (Order, error) {
	ctx, s := withSink(ctx, EndpointFinalize)
	got, err := c.c.FinalizeOrder(ctx, acct.acme(), toOrder(o), csrDER)
	if err != nil {
		out := fromOrder(got)
		if out.URL == "" {
			out.URL = o.URL
		}
		return out, wrap("finalize order", err, s)
	}
	if got.Location == "" {
		got.Location = o.URL
	}
	return fromOrder(got), nil
}

// Chain is a downloaded certificate chain.
type Chain struct {
	PEM []byte // leaf first
	// RenewalInfo is the CA's renewal window for the leaf, asked for
	// while downloading (RFC 9773 §4.2); nil when the CA offers no ARI or
	// gave no usable window.
	RenewalInfo *RenewalInfo
}

// Certificate downloads the PEM chain at url, leaf first, with the CA's
// renewal information for it when the CA offers ARI.
func (c *Client) Certificate(ctx context.Context, acct Account, url string) (Chain, error) {
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
