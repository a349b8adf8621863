// Package acmeclient speaks RFC 8555 to an ACME CA. It is the only package
// of tlspilot that imports an ACME protocol library, so that library can be
// swapped without touching the rest. Every call takes and returns plain
// values; the resumable issuance flow lives above it.
package acmeclient

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mholt/acmez/v3/acme"
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
	// finalized when the CA sends no Retry-After (default 100ms).
	PollInterval time.Duration
	// PollTimeout bounds one wait for an authorization or an order
	// (default 5m).
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
	hc := &http.Client{Transport: &retryAfterTransport{base: base, observe: cfg.Observe, dir: cfg.Directory}, Timeout: 60 * time.Second}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 5 * time.Minute
	}
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

// retryAfterTransport notes the Retry-After header of error responses in
// the sink carried by the request's context, because the protocol library
// does not hand it back with the problem. It also bounds the badNonce
// answers in a row that one call may receive: the protocol library
// retries a rejected nonce up to ten times per request, so a CA that
// rejects every nonce would get ten requests per request; after
// maxBadNonces in a row the call fails with errBadNonceStorm instead, and
// the Manager's backoff takes over.
type retryAfterTransport struct {
	base    http.RoundTripper
	dir     string                                           // the directory URL
	observe func(endpoint string, code int, d time.Duration) // may be nil
}

// maxBadNonces is how many badNonce answers in a row one call accepts.
// RFC 8555 §6.5 asks clients to retry with the fresh nonce. With Pebble's
// 20% rejection rate, ten in a row happen to 1 request in 10 million (five
// in a row, 1 in 3,000, were seen in a test run of a few hundred orders);
// a CA rejecting every nonce gets ten requests per call, as many as the
// protocol library's own limit for one request, and then the Manager's
// backoff across attempts takes over.
const maxBadNonces = 10

// errBadNonceStorm ends a call whose nonces the CA kept rejecting.
var errBadNonceStorm = errors.New("the CA rejected every nonce (badNonce) of this request")

func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s, _ := req.Context().Value(sinkKey{}).(*sink)
	if s != nil && s.badNonceCount() >= maxBadNonces {
		return nil, errBadNonceStorm
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if t.observe != nil {
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		t.observe(t.endpoint(req, s), code, time.Since(start))
	}
	if err != nil || s == nil {
		return resp, err
	}
	if resp.StatusCode < 400 {
		if req.Method == http.MethodPost {
			s.nonceAccepted()
		}
		return resp, err
	}
	if at, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		s.set(at)
	}
	if resp.StatusCode == http.StatusBadRequest && isBadNonce(resp) {
		s.badNonce()
	} else if req.Method == http.MethodPost {
		s.nonceAccepted()
	}
	return resp, err
}

// endpoint names what req asks for: nonces and the directory are fetched
// within any call, the rest is named by the call.
func (t *retryAfterTransport) endpoint(req *http.Request, s *sink) string {
	switch {
	case req.Method == http.MethodHead:
		return EndpointNonce
	case req.Method == http.MethodGet && req.URL.String() == t.dir:
		return EndpointDirectory
	case s != nil && s.endpoint != "":
		return s.endpoint
	}
	return "other"
}

// isBadNonce reports whether an error response is a badNonce problem. It
// reads the (small) problem document and puts it back for the caller.
func isBadNonce(resp *http.Response) bool {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return err == nil && bytes.Contains(b, []byte(acme.ProblemTypeBadNonce))
}

type sinkKey struct{}

// sink collects, during one call, the latest Retry-After seen and the
// number of badNonce answers in a row.
type sink struct {
	endpoint  string // of the call, for Config.Observe
	mu        sync.Mutex
	at        time.Time
	badNonces int
}

func (s *sink) badNonce() {
	s.mu.Lock()
	s.badNonces++
	s.mu.Unlock()
}

// nonceAccepted notes a signed request whose nonce the CA accepted.
func (s *sink) nonceAccepted() {
	s.mu.Lock()
	s.badNonces = 0
	s.mu.Unlock()
}

func (s *sink) badNonceCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badNonces
}

func (s *sink) set(at time.Time) {
	s.mu.Lock()
	s.at = at
	s.mu.Unlock()
}

func (s *sink) get() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at
}

func withSink(ctx context.Context, endpoint string) (context.Context, *sink) {
	s := &sink{endpoint: endpoint}
	return context.WithValue(ctx, sinkKey{}, s), s
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 && fmt.Sprint(secs) == v {
		if secs > 7*24*3600 {
			secs = 7 * 24 * 3600
		}
		return now.Add(time.Duration(secs) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
