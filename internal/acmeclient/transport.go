package acmeclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// retryAfterTransport stands between the protocol library and the CA and
// guards the library against what a broken or hostile CA may answer:
//
//   - It notes the Retry-After header of error responses in the sink
//     carried by the request's context, because the protocol library does
//     not hand it back with the problem.
//   - It bounds the Retry-After of successful polls (an order being
//     finalized, an authorization being validated) to [pollInterval,
//     pollTimeout] and drops values it cannot read, since the library
//     sleeps exactly what the CA says (see boundPoll), and notes it in the
//     sink for WaitAuthz.
//   - It bounds the size of every answer (limitBody).
//   - It refuses a directory that lacks an endpoint every flow needs
//     (checkDirectory), so that the library, which caches directories
//     process-wide for 12 hours, never caches a broken one.
//   - It bounds the badNonce answers in a row that one call may receive:
//     the protocol library retries a rejected nonce up to ten times per
//     request, so a CA that rejects every nonce would get ten requests per
//     request; after maxBadNonces in a row the call fails with
//     errBadNonceStorm instead, and the Manager's backoff takes over.
type retryAfterTransport struct {
	base    http.RoundTripper
	dir     string                                           // the directory URL
	observe func(endpoint string, code int, d time.Duration) // may be nil
	// pollInterval and pollTimeout bound the Retry-After of successful
	// polls; zero leaves such answers as they are.
	pollInterval, pollTimeout time.Duration
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

// CloseIdleConnections closes the idle connections of the transport
// underneath, when it keeps any (http.Client.CloseIdleConnections finds
// it through this method).
func (t *retryAfterTransport) CloseIdleConnections() {
	if ci, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

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
	if err != nil {
		return resp, err
	}
	resp.Body = limitBody(resp)
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && t.isDirectory(req) {
		if err := checkDirectory(resp); err != nil {
			return nil, err
		}
	}
	if s == nil {
		return resp, nil
	}
	if resp.StatusCode < 400 {
		if req.Method == http.MethodPost {
			s.nonceAccepted()
			if ok {
				t.boundPoll(resp, s)
			}
		}
		return resp, nil
	}
	if at, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		s.set(at)
	}
	if resp.StatusCode == http.StatusBadRequest && isBadNonce(resp) {
		s.badNonce()
	} else if req.Method == http.MethodPost {
		s.nonceAccepted()
	}
	return resp, nil
}

// boundPoll bounds the Retry-After of a successful answer to a call that
// polls (finalizing an order, validating an authorization) to
// [t.pollInterval, t.pollTimeout] (RFC 8555 §7.4, §7.5.1; RFC 9110
// §10.2.3), rewritten in whole seconds, rounded up, which is all the
// protocol library reads; a value it cannot read, or at most the poll
// interval, is removed, so that the library waits its poll interval. The
// protocol library sleeps exactly the CA's value and checks its poll
// timeout only between sleeps: 0 or a date in the past would make it poll
// in a tight loop, ten years would hold the order that long. The bounded
// time is noted in s for WaitAuthz. Other answers, such as renewal
// information whose Retry-After is hours by design (RFC 9773 §4.3), are
// left as they are.
func (t *retryAfterTransport) boundPoll(resp *http.Response, s *sink) {
	if (s.endpoint != EndpointFinalize && s.endpoint != EndpointAuthorization) || t.pollTimeout <= 0 {
		return
	}
	now := time.Now()
	d, ok := pollDelay(resp.Header.Get("Retry-After"), now, t.pollInterval, t.pollTimeout)
	if !ok {
		resp.Header.Del("Retry-After")
		return
	}
	resp.Header.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
	s.setPoll(now.Add(d))
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

// isDirectory reports whether req fetches the directory: a GET of the
// directory URL, or a redirect followed from one.
func (t *retryAfterTransport) isDirectory(req *http.Request) bool {
	for r := req; r != nil; {
		if r.Method == http.MethodGet && r.URL.String() == t.dir {
			return true
		}
		if r.Response == nil {
			break
		}
		r = r.Response.Request
	}
	return false
}

// isBadNonce reports whether an error response is a badNonce problem. It
// reads the (small, bounded by limitBody) problem document and puts it
// back for the caller, with the read error, if any.
func isBadNonce(resp *http.Response) bool {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = &replayBody{r: bytes.NewReader(b), err: err}
	return err == nil && bytes.Contains(b, []byte(acme.ProblemTypeBadNonce))
}

// replayBody gives back a body already read: its bytes, then the error
// that ended the reading, if any.
type replayBody struct {
	r   *bytes.Reader
	err error
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.err != nil {
		err = b.err
	}
	return n, err
}

func (b *replayBody) Close() error { return nil }

type sinkKey struct{}

// sink collects, during one call, the latest Retry-After seen on an error
// answer, the latest (bounded) Retry-After of a successful poll, and the
// number of badNonce answers in a row.
type sink struct {
	endpoint  string // of the call, for Config.Observe
	mu        sync.Mutex
	at        time.Time // Retry-After of the latest error answer
	pollAt    time.Time // bounded Retry-After of the latest successful poll
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

func (s *sink) setPoll(at time.Time) {
	s.mu.Lock()
	s.pollAt = at
	s.mu.Unlock()
}

// poll returns when the CA asked, on its latest successful answer to a
// poll, to be polled again; zero if it did not say.
func (s *sink) poll() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollAt
}

func withSink(ctx context.Context, endpoint string) (context.Context, *sink) {
	s := &sink{endpoint: endpoint}
	return context.WithValue(ctx, sinkKey{}, s), s
}
