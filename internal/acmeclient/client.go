// Package acmeclient speaks RFC 8555 to an ACME CA. It is the only package
// of tlspilot that imports an ACME protocol library, so that library can be
// swapped without touching the rest. Every call takes and returns plain
// values; the resumable issuance flow lives above it.
package acmeclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
	"golang.org/x/net/http/httpguts"
)

// Config configures a Client.
type Config struct {
	// Directory is the CA's ACME directory URL.
	Directory string
	// Roots, if set, are the only roots trusted for the CA's own HTTPS API.
	Roots *x509.CertPool
	// UserAgent names the program first in the User-Agent header, as
	// product/version ("tlspilot/v1.2.0"); acmez adds its own name and
	// the platform after it. Default "tlspilot".
	UserAgent string
	// PollInterval is the pause between polls of an order being
	// finalized when the CA sends no Retry-After (default 100ms). It is
	// also the shortest pause between polls of an order or an
	// authorization whatever the CA's Retry-After says (0, a date in the
	// past): a shorter one, or one that cannot be read, is ignored.
	PollInterval time.Duration
	// PollTimeout bounds one wait for an authorization or an order
	// (default 5m). A Retry-After on a poll answer is cut to it, and the
	// wait ends, whatever the CA says, at most a minute (one more
	// request) after it.
	PollTimeout time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Transport, if set, carries the HTTP requests to the CA instead of a
	// clone of http.DefaultTransport (Roots is then not used). Tests use
	// it to inject faults.
	Transport http.RoundTripper
	// Observe, if set, is called after every HTTP request to the CA with
	// its endpoint (one of the Endpoint constants), the HTTP status (0
	// when no answer came) and how long it took. It must not block.
	Observe func(endpoint string, code int, d time.Duration)
}

// The endpoints requests are counted by: a fixed set, whatever URLs the
// CA uses.
const (
	EndpointDirectory     = "directory"
	EndpointNonce         = "nonce"
	EndpointNewAccount    = "new-account" // also account lookups by key
	EndpointAccount       = "account"
	EndpointNewOrder      = "new-order"
	EndpointOrder         = "order"
	EndpointAuthorization = "authorization"
	EndpointChallenge     = "challenge"
	EndpointFinalize      = "finalize" // with the polling of the order that follows
	EndpointCertificate   = "certificate"
	EndpointRenewalInfo   = "renewal-info"
	EndpointRevoke        = "revoke"
)

// Client talks to one ACME CA. It is safe for concurrent use.
type Client struct {
	dir         string
	c           *acme.Client
	pollTimeout time.Duration
}

// New returns a Client for cfg.Directory. It does no I/O.
func New(cfg Config) (*Client, error) {
	if cfg.Directory == "" {
		return nil, fmt.Errorf("acmeclient: no directory URL")
	}
	if err := CheckUserAgent(cfg.UserAgent); err != nil {
		return nil, fmt.Errorf("acmeclient: %w", err)
	}
	base := cfg.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
		// Keep as many idle connections as requests may run at once (the
		// fleet issuer runs up to 256 orders), with no overall cap below
		// that: the transport talks to one CA. With fewer, a CA speaking
		// HTTP/1.1 sees connections closed after a burst and opened again,
		// each with a TLS handshake (BenchmarkFleet1000: 2,562 connections
		// for 1,000 orders with 64 per host and DefaultTransport's 100 in
		// all, 441 with this).
		t.MaxIdleConnsPerHost, t.MaxIdleConns = 256, 0
		base = t
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 5 * time.Minute
	}
	tr := &retryAfterTransport{base: base, observe: cfg.Observe, dir: cfg.Directory,
		pollInterval: cfg.PollInterval, pollTimeout: cfg.PollTimeout}
	hc := &http.Client{Transport: tr, Timeout: requestTimeout}
	ac := &acme.Client{
		Directory:    cfg.Directory,
		HTTPClient:   hc,
		UserAgent:    cmp.Or(strings.TrimSpace(cfg.UserAgent), "tlspilot"),
		PollInterval: cfg.PollInterval,
		PollTimeout:  cfg.PollTimeout,
		Logger:       demoteInfo(cfg.Logger),
	}
	return &Client{dir: cfg.Directory, c: ac, pollTimeout: cfg.PollTimeout}, nil
}

// demoteInfo returns l with acmez's info records logged at debug: they
// repeat what tlspilot logs itself, and some mislead (acmez's "got
// renewal info" shows a renewal time it draws for itself, not the one
// tlspilot keeps). Warnings and errors pass as they are, except those
// logged for a request whose context has ended: acmez warns "HTTP
// request failed; retrying" for a request the caller cancelled (a
// Manager stopping), which is no fault.
func demoteInfo(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	return slog.New(infoAsDebug{l.Handler()})
}

// infoAsDebug is a slog.Handler passing records below warn, and every
// record whose context has ended, to h at debug.
type infoAsDebug struct{ h slog.Handler }

func (d infoAsDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demoted(ctx, l))
}

func (d infoAsDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demoted(ctx, r.Level)
	return d.h.Handle(ctx, r)
}

// demoted is the level a record of level l is logged at.
func demoted(ctx context.Context, l slog.Level) slog.Level {
	if ctx != nil && ctx.Err() != nil {
		return slog.LevelDebug
	}
	return debugUnlessWarn(l)
}

func (d infoAsDebug) WithAttrs(as []slog.Attr) slog.Handler { return infoAsDebug{d.h.WithAttrs(as)} }
func (d infoAsDebug) WithGroup(name string) slog.Handler    { return infoAsDebug{d.h.WithGroup(name)} }

func debugUnlessWarn(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

// DirectoryURL returns the CA's directory URL.
func (c *Client) DirectoryURL() string { return c.dir }

// Directory describes what a CA offers.
type Directory struct {
	TermsOfService          string
	ExternalAccountRequired bool
	Profiles                map[string]string
	RenewalInfo             bool // the CA offers ARI (RFC 9773)
}

// Directory fetches the CA's directory.
func (c *Client) Directory(ctx context.Context) (Directory, error) {
	ctx, sink := withSink(ctx, EndpointDirectory)
	d, err := c.c.GetDirectory(ctx)
	if err != nil {
		return Directory{}, wrap("get directory", err, sink)
	}
	out := Directory{RenewalInfo: d.RenewalInfo != ""}
	if d.Meta != nil {
		out.TermsOfService = d.Meta.TermsOfService
		out.ExternalAccountRequired = d.Meta.ExternalAccountRequired
		out.Profiles = d.Meta.Profiles
	}
	return out, nil
}

// CloseIdleConnections closes the connections to the CA kept open for
// the next request, and so their goroutines; a later request opens new
// ones.
func (c *Client) CloseIdleConnections() { c.c.HTTPClient.CloseIdleConnections() }

// CheckUserAgent says what is wrong with ua as the first product of the
// User-Agent header, nil if nothing: net/http refuses to send a header
// value with a control character (a line break, NUL), so every request to
// the CA would fail.
func CheckUserAgent(ua string) error {
	if !httpguts.ValidHeaderFieldValue(ua) {
		return fmt.Errorf("user agent %q: control characters are not allowed in an HTTP header", ua)
	}
	return nil
}
