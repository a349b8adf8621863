package ocspclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one exchange with a responder.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBodySize bounds the body read from a responder, in bytes.
	DefaultMaxBodySize = 64 << 10
)

// ErrNoResponder is wrapped by the error of Fetch when neither
// Options.Responder nor the certificate names an http or https responder.
// Callers that treat "no OCSP" as normal (stapling a certificate from a
// CA that ended OCSP) test for it with errors.Is.
var ErrNoResponder = errors.New("no ocsp responder")

// ErrHTTPStatus is wrapped by the error of Fetch when the responder
// answered with an HTTP status other than 200 OK; the error names the
// status.
var ErrHTTPStatus = errors.New("HTTP status")

// Options tells Fetch how to reach a responder. The zero value is usable.
type Options struct {
	// Client sends the request; nil means an http.Client with
	// http.DefaultTransport.
	Client *http.Client
	// Responder, when set, is the responder's URL, used instead of the
	// ones the certificate names (mod_ssl's SSLOCSPOverrideResponder).
	Responder string
	// Timeout bounds the whole exchange (connect, send, read); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBodySize bounds the response body in bytes; 0 means
	// DefaultMaxBodySize. A larger body is an error.
	MaxBodySize int64
}

// ResponderURL returns the responder Fetch asks about leaf: opts.Responder
// if set, else the first http or https URL of leaf's Authority Information
// Access (leaf.OCSPServer). The error wraps ErrNoResponder if there is
// none.
func (opts Options) ResponderURL(leaf *x509.Certificate) (string, error) {
	if opts.Responder != "" {
		if !httpURL(opts.Responder) {
			return "", fmt.Errorf("ocsp responder %q: not an http or https URL", opts.Responder)
		}
		return opts.Responder, nil
	}
	for _, u := range leaf.OCSPServer {
		if httpURL(u) {
			return u, nil
		}
	}
	return "", ErrNoResponder
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Fetch asks the responder (see Options.ResponderURL) about leaf, issued
// by issuer, with an HTTP POST of an application/ocsp-request (RFC 6960
// Appendix A.1), and returns the response verified by Parse at the time
// it arrived. It honours ctx and Options.Timeout; it never retries. The
// error names the responder; it wraps ErrNoResponder, an HTTP failure
// (ErrHTTPStatus for a status other than 200), ocsp.ResponseError for an
// unsuccessful answer (tryLater …), or one of the errors of Parse.
// Problem says in a few words which.
func Fetch(ctx context.Context, opts Options, leaf, issuer *x509.Certificate) (*Response, error) {
	responder, err := opts.ResponderURL(leaf)
	if err != nil {
		return nil, fmt.Errorf("ocsp fetch serial %x: %w", leaf.SerialNumber, err)
	}
	raw, err := exchange(ctx, opts, responder, leaf, issuer)
	if err != nil {
		return nil, fmt.Errorf("ocsp fetch from %s: %w", responder, err)
	}
	r, err := Parse(raw, leaf, issuer, time.Now())
	if err != nil {
		return nil, fmt.Errorf("ocsp fetch from %s: %w", responder, err)
	}
	return r, nil
}

// exchange posts the request and reads the body, bounded in time and size.
func exchange(ctx context.Context, opts Options, responder string, leaf, issuer *x509.Certificate) ([]byte, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("create request: %w", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	// One exchange per response's half-life: no idle connection is kept,
	// which also frees responders that serve one connection at a time
	// (openssl ocsp) for the next client.
	hreq.Close = true
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	hresp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer func() { _ = hresp.Body.Close() }()
	if hresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w %s", ErrHTTPStatus, hresp.Status)
	}
	return readBounded(hresp.Body, opts.MaxBodySize)
}

// readBounded reads all of r, failing past max bytes (0: the default).
func readBounded(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBodySize
	}
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return body, nil
}
