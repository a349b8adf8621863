package acmeclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeCA is an in-memory ACME CA under base, enough for one order:
// orders stay "processing" (or turn valid after orderPolls polls),
// authorizations stay "pending" for authzPending polls, each answer with
// the Retry-After given.
type fakeCA struct {
	base         string
	dir          func(n int) string // the directory JSON of the nth (from 1) fetch; nil: a complete one
	orderRA      string
	orderPolls   int    // polls after which the order is valid; 0: never
	orderCert    string // certificate URL of the valid order
	authzRA      string
	authzPending int
	chain        []byte // the certificate answer

	mu         sync.Mutex
	dirFetches int
	polls      []time.Time // of the order
	authzPolls []time.Time
	nonce      int
}

func (c *fakeCA) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nonce++
	h := http.Header{"Replay-Nonce": {fmt.Sprint("n", c.nonce)}, "Content-Type": {"application/json"}}
	body := ""
	switch strings.TrimPrefix(req.URL.String(), c.base) {
	case "/dir":
		c.dirFetches++
		body = `{"newNonce":"` + c.base + `/nonce","newAccount":"` + c.base + `/acct","newOrder":"` + c.base + `/new-order"}`
		if c.dir != nil {
			body = c.dir(c.dirFetches)
		}
	case "/nonce":
	case "/finalize", "/order":
		if req.URL.Path == "/order" {
			c.polls = append(c.polls, time.Now())
		}
		h.Set("Retry-After", c.orderRA)
		h.Set("Location", c.base+"/order")
		body = `{"status":"processing","identifiers":[{"type":"dns","value":"a.example"}],"finalize":"` + c.base + `/finalize"}`
		if len(c.polls) > 1000 { // a client polling in a tight loop: end it
			body = `{"status":"invalid","identifiers":[{"type":"dns","value":"a.example"}]}`
		} else if c.orderPolls > 0 && len(c.polls) >= c.orderPolls {
			body = `{"status":"valid","identifiers":[{"type":"dns","value":"a.example"}],"certificate":"` + c.orderCert + `"}`
		}
	case "/authz":
		c.authzPolls = append(c.authzPolls, time.Now())
		h.Set("Retry-After", c.authzRA)
		st := "valid"
		if len(c.authzPolls) <= c.authzPending {
			st = "pending"
		}
		body = `{"status":"` + st + `","identifier":{"type":"dns","value":"a.example"},` +
			`"challenges":[{"type":"http-01","url":"` + c.base + `/chall","token":"tok","status":"processing"}]}`
	case "/cert":
		h.Set("Content-Type", "application/pem-certificate-chain")
		body = string(c.chain)
	default:
		return &http.Response{StatusCode: http.StatusNotFound, Header: h, Body: http.NoBody, Request: req}, nil
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// newFake returns a Client of ca, whose base is made unique to t: the
// protocol library caches directories process-wide by URL.
func newFake(t *testing.T, ca *fakeCA, interval, timeout time.Duration) (*Client, Account) {
	t.Helper()
	host := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r == '/':
			return '.'
		}
		return '-'
	}, strings.ToLower(t.Name()))
	ca.base = "https://" + host + ".invalid"
	c, err := New(Config{Directory: ca.base + "/dir", Transport: ca, PollInterval: interval, PollTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return c, Account{URL: ca.base + "/acct/1", Key: key}
}

// TestFinalizeBoundsRetryAfter: an order that stays "processing" is
// polled no more often than the poll interval and no longer than the poll
// timeout, whatever its Retry-After says; a sane Retry-After is followed.
func TestFinalizeBoundsRetryAfter(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 2 * time.Second
	for _, tc := range []struct {
		value    string
		min, max int // polls
	}{
		{"0", 15, 21},
		{"-1", 15, 21},
		{"soon", 15, 21},
		{"Sat, 01 Jan 2000 00:00:00 GMT", 15, 21},
		{"1", 1, 2},
		{"315360000", 0, 1},
		{"Sat, 01 Jan 2050 00:00:00 GMT", 0, 1},
	} {
		t.Run(tc.value, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca := &fakeCA{orderRA: tc.value}
				c, acct := newFake(t, ca, interval, timeout)
				start := time.Now()
				_, err := c.Finalize(context.Background(), acct, Order{URL: ca.base + "/order", Status: StatusReady, Finalize: ca.base + "/finalize"}, []byte("csr"))
				took := time.Since(start)
				if err == nil {
					t.Fatal("an order that never left processing was finalized")
				}
				if took > timeout+time.Second {
					t.Errorf("waited %v (poll timeout %v)", took, timeout)
				}
				if n := len(ca.polls); n < tc.min || n > tc.max {
					t.Errorf("%d polls in %v, want %d to %d", n, took, tc.min, tc.max)
				}
			})
		})
	}
}

// TestFinalizeValidWithoutCertificate: an order the CA calls valid
// without a certificate URL fails clearly, and so does a download from no
// URL (RFC 8555 §7.1.3).
func TestFinalizeValidWithoutCertificate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := &fakeCA{orderPolls: 1}
		c, acct := newFake(t, ca, 100*time.Millisecond, time.Minute)
		got, err := c.Finalize(context.Background(), acct, Order{URL: ca.base + "/order", Status: StatusReady, Finalize: ca.base + "/finalize"}, []byte("csr"))
		if !errors.Is(err, ErrNoCertificateURL) || ClassOf(err) != BadOrder || got.Status != StatusValid {
			t.Errorf("Finalize = %q, %v (%v), want valid and %v", got.Status, err, ClassOf(err), ErrNoCertificateURL)
		}
		_, err = c.Certificate(context.Background(), acct, "")
		if !errors.Is(err, ErrNoCertificateURL) || ClassOf(err) != BadOrder {
			t.Errorf("Certificate(\"\") = %v, want %v", err, ErrNoCertificateURL)
		}
	})
}

// TestFinalizeBackstop: the wait for an order ends at the poll timeout
// plus pollMargin even if the protocol library's own bound fails (here a
// transport that hangs until its request is cancelled), with an error
// that says why.
func TestFinalizeBackstop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{Directory: "https://backstop.invalid/dir", Transport: hang{}, PollTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.c.HTTPClient.Timeout = 0 // only the backstop is left
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		start := time.Now()
		_, err = c.Finalize(context.Background(), Account{URL: "https://backstop.invalid/acct", Key: key}, Order{Finalize: "https://backstop.invalid/f"}, nil)
		if took := time.Since(start); took != time.Second+pollMargin {
			t.Errorf("took %v, want %v", took, time.Second+pollMargin)
		}
		if !errors.Is(err, context.DeadlineExceeded) || ClassOf(err) != Transient || !strings.Contains(err.Error(), "gave up waiting for the order") {
			t.Errorf("err = %v (%v)", err, ClassOf(err))
		}
	})
}

// hang answers no request until it is cancelled.
type hang struct{}

func (hang) RoundTrip(req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// TestWaitAuthzFollowsRetryAfter: authorization polls are as far apart as
// the CA's Retry-After asks when that is longer than WaitAuthz's own
// schedule (RFC 8555 §7.5.1), never closer than that schedule, and stop
// at the poll timeout.
func TestWaitAuthzFollowsRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		value   string
		pending int
		timeout time.Duration
		minGap  time.Duration // between polls after the first
		polls   int           // 0: do not check
		fails   bool
	}{
		{"2", 2, time.Minute, 2 * time.Second, 3, false},
		{"0", 3, time.Minute, 100 * time.Millisecond, 4, false},
		{"Sat, 01 Jan 2000 00:00:00 GMT", 3, time.Minute, 100 * time.Millisecond, 4, false},
		{"315360000", 100, 5 * time.Second, 4 * time.Second, 2, true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca := &fakeCA{authzRA: tc.value, authzPending: tc.pending}
				c, acct := newFake(t, ca, 100*time.Millisecond, tc.timeout)
				start := time.Now()
				_, err := c.WaitAuthz(context.Background(), acct, Authz{URL: ca.base + "/authz", Identifier: Identifier{Type: "dns", Value: "a.example"}})
				if (err != nil) != tc.fails {
					t.Fatalf("err = %v", err)
				}
				if took := time.Since(start); took > tc.timeout+time.Second {
					t.Errorf("waited %v (poll timeout %v)", took, tc.timeout)
				}
				if tc.polls != 0 && len(ca.authzPolls) != tc.polls {
					t.Errorf("%d polls, want %d", len(ca.authzPolls), tc.polls)
				}
				for i := 1; i < len(ca.authzPolls); i++ {
					if gap := ca.authzPolls[i].Sub(ca.authzPolls[i-1]); gap < tc.minGap {
						t.Errorf("poll %d came %v after the one before, want at least %v", i+1, gap, tc.minGap)
					}
				}
			})
		})
	}
}

// TestDirectoryIncomplete: a directory answer without an endpoint every
// flow needs fails with an error naming it, and is not kept: the next
// call fetches the directory anew.
func TestDirectoryIncomplete(t *testing.T) {
	for _, tc := range []struct{ name, first, want string }{
		{"no newNonce", `{"newAccount":"%[1]s/acct","newOrder":"%[1]s/new-order"}`, "lacks newNonce"},
		{"no newAccount", `{"newNonce":"%[1]s/nonce","newOrder":"%[1]s/new-order"}`, "lacks newAccount"},
		{"no newOrder", `{"newNonce":"%[1]s/nonce","newAccount":"%[1]s/acct"}`, "lacks newOrder"},
		{"empty newAccount", `{"newNonce":"%[1]s/nonce","newAccount":"","newOrder":"%[1]s/new-order"}`, `gives newAccount as "", not an http(s) URL`},
		{"relative newOrder", `{"newNonce":"%[1]s/nonce","newAccount":"%[1]s/acct","newOrder":"/new-order"}`, `gives newOrder as "/new-order"`},
		{"number", `{"newNonce":1,"newAccount":"%[1]s/acct","newOrder":"%[1]s/new-order"}`, `gives newNonce as 1`},
		{"not JSON", `<html>`, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca := &fakeCA{}
				ca.dir = func(n int) string {
					if n <= 3 { // the protocol library tries 3 times
						return fmt.Sprintf(tc.first, ca.base)
					}
					return fmt.Sprintf(`{"newNonce":"%[1]s/nonce","newAccount":"%[1]s/acct","newOrder":"%[1]s/new-order"}`, ca.base)
				}
				c, _ := newFake(t, ca, 0, 0)
				_, err := c.Directory(context.Background())
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one saying %q", err, tc.want)
				}
				if _, err := c.Directory(context.Background()); err != nil {
					t.Errorf("the next call kept the bad directory: %v", err)
				}
			})
		})
	}
}

// TestAnswerLimits: answers are read up to their limit and no further.
func TestAnswerLimits(t *testing.T) {
	for _, tc := range []struct {
		ctype string
		size  int
		fails bool
	}{
		{"application/json", maxAnswerBytes, false},
		{"application/json", maxAnswerBytes + 1, true},
		{"application/problem+json", 64 << 20, true},
		{"application/pem-certificate-chain", maxChainBytes, false},
		{"application/pem-certificate-chain; charset=utf-8", maxChainBytes + 1, true},
		{"", maxAnswerBytes + 1, true},
	} {
		src := &countingReader{left: int64(tc.size)}
		resp := &http.Response{Header: http.Header{"Content-Type": {tc.ctype}}, Body: io.NopCloser(src)}
		b, err := io.ReadAll(limitBody(resp))
		var tl *answerTooLargeError
		if tc.fails != errors.As(err, &tl) {
			t.Errorf("%s, %d bytes: %v", tc.ctype, tc.size, err)
		}
		if !tc.fails && len(b) != tc.size {
			t.Errorf("%s, %d bytes: read %d", tc.ctype, tc.size, len(b))
		}
		if tc.fails && (src.read > int64(maxChainBytes)+1 || !strings.Contains(err.Error(), "exceeds")) {
			t.Errorf("%s, %d bytes: read %d bytes from the CA: %v", tc.ctype, tc.size, src.read, err)
		}
	}
}

// countingReader is left bytes of 'A', counting what was read.
type countingReader struct{ left, read int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), c.left)
	copy(p, bytes.Repeat([]byte{'A'}, int(n)))
	c.left -= n
	c.read += n
	return int(n), nil
}

// TestCertificateTooLarge: a certificate answer past maxChainBytes fails
// with an error that says so.
func TestCertificateTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := &fakeCA{chain: bytes.Repeat([]byte{'A'}, maxChainBytes+1)}
		c, acct := newFake(t, ca, 0, 0)
		_, err := c.Certificate(context.Background(), acct, ca.base+"/cert")
		want := fmt.Sprintf("the CA's answer (application/pem-certificate-chain) exceeds %d bytes", maxChainBytes)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want one saying %q", err, want)
		}
		ca.chain = ca.chain[:maxChainBytes]
		if _, err := c.Certificate(context.Background(), acct, ca.base+"/cert"); err != nil {
			t.Errorf("an answer of %d bytes: %v", maxChainBytes, err)
		}
	})
}

func TestPollDelay(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const lo, hi = 100 * time.Millisecond, 5 * time.Minute
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
		{"0", 0, false},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, false},
		{"1", time.Second, true},
		{"120", 2 * time.Minute, true},
		{"3600", hi, true},
		{"315360000", hi, true},
		{now.AddDate(10, 0, 0).Format(http.TimeFormat), hi, true},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
	} {
		got, ok := pollDelay(tc.in, now, lo, hi)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pollDelay(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPollWait(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	deadline := now.Add(time.Minute)
	for _, tc := range []struct {
		delay    time.Duration
		retryAt  time.Time
		deadline time.Time
		want     time.Duration
	}{
		{50 * time.Millisecond, time.Time{}, deadline, 50 * time.Millisecond},
		{50 * time.Millisecond, now.Add(2 * time.Second), deadline, 2 * time.Second},
		{2 * time.Second, now.Add(time.Second), deadline, 2 * time.Second},
		{2 * time.Second, now.Add(time.Hour), deadline, time.Minute},
		{2 * time.Second, time.Time{}, now.Add(time.Second), time.Second},
		{2 * time.Second, time.Time{}, now.Add(-time.Second), 0},
	} {
		if got := pollWait(now, tc.delay, tc.retryAt, tc.deadline); got != tc.want {
			t.Errorf("pollWait(%v, %v, %v) = %v, want %v", tc.delay, tc.retryAt.Sub(now), tc.deadline.Sub(now), got, tc.want)
		}
	}
}

// TestBoundPollOnlyPolls: the Retry-After of successful answers is
// bounded for order and authorization polls only; renewal information
// asks for hours by design (RFC 9773 §4.3) and keeps its value.
func TestBoundPollOnlyPolls(t *testing.T) {
	tr := &retryAfterTransport{pollInterval: time.Second, pollTimeout: time.Minute}
	for _, tc := range []struct{ endpoint, in, want string }{
		{EndpointFinalize, "21600", "60"},
		{EndpointFinalize, "0", ""},
		{EndpointAuthorization, "junk", ""},
		{EndpointAuthorization, "3", "3"},
		{EndpointRenewalInfo, "21600", "21600"},
		{EndpointCertificate, "0", "0"},
	} {
		_, s := withSink(context.Background(), tc.endpoint)
		resp := &http.Response{Header: http.Header{"Retry-After": {tc.in}}}
		tr.boundPoll(resp, s)
		if got := resp.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("%s, Retry-After %q: now %q, want %q", tc.endpoint, tc.in, got, tc.want)
		}
	}
}

// TestIsDirectory: the directory is recognized after redirects too, so a
// redirect cannot smuggle a broken one into the protocol library's cache.
func TestIsDirectory(t *testing.T) {
	tr := &retryAfterTransport{dir: "https://ca.invalid/dir"}
	first, _ := http.NewRequest(http.MethodGet, "https://ca.invalid/dir", nil)
	second, _ := http.NewRequest(http.MethodGet, "https://ca.invalid/elsewhere", nil)
	second.Response = &http.Response{Request: first}
	other, _ := http.NewRequest(http.MethodGet, "https://ca.invalid/acme/renewal-info/x", nil)
	post, _ := http.NewRequest(http.MethodPost, "https://ca.invalid/dir", nil)
	for _, tc := range []struct {
		req  *http.Request
		want bool
	}{{first, true}, {second, true}, {other, false}, {post, false}} {
		if got := tr.isDirectory(tc.req); got != tc.want {
			t.Errorf("isDirectory(%s %s) = %v", tc.req.Method, tc.req.URL, got)
		}
	}
}
