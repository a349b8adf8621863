package acmeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

func TestClassify(t *testing.T) {
	ns := acme.ProblemTypeNamespace
	cases := []struct {
		op     string
		typ    string
		status int
		err    error
		want   Class
	}{
		{"", ns + "badNonce", 400, nil, BadNonce},
		{"", "", 0, fmt.Errorf("attempt 3: %w", errBadNonceStorm), BadNonce},
		// "unauthorized" is about the account where the request was the
		// account's own (a deactivated account), about an identifier
		// otherwise (a failed validation).
		{opNewOrder, ns + "unauthorized", 403, nil, BadAccount},
		{opGetAccount, ns + "unauthorized", 403, nil, BadAccount},
		{opRegister, ns + "unauthorized", 403, nil, BadAccount},
		{"accept http-01 challenge for a.example", ns + "unauthorized", 403, nil, BadOrder},
		{"", ns + "rateLimited", 429, nil, RateLimited},
		{"", "", 429, nil, RateLimited},
		{"", ns + "serverInternal", 500, nil, Transient},
		{"", "", 503, nil, Transient},
		{"", ns + "badCSR", 400, nil, BadOrder},
		{"", ns + "rejectedIdentifier", 400, nil, BadOrder},
		{"", ns + "unsupportedIdentifier", 400, nil, BadOrder},
		{"", ns + "caa", 403, nil, BadOrder},
		{"", ns + "unauthorized", 403, nil, BadOrder},
		{"", ns + "incorrectResponse", 403, nil, BadOrder},
		{"", ns + "accountDoesNotExist", 400, nil, BadAccount},
		{"", ns + "externalAccountRequired", 400, nil, BadAccount},
		{"", ns + "userActionRequired", 403, nil, BadAccount},
		{"", "about:blank", 404, nil, BadOrder},
		{"", "", 0, errors.New("dial tcp: connection refused"), Transient},
		{"", "", 0, context.Canceled, Canceled},
		{"", "", 0, fmt.Errorf("x: %w", context.DeadlineExceeded), Transient},
	}
	for _, tc := range cases {
		if got := classify(tc.op, tc.typ, tc.status, tc.err); got != tc.want {
			t.Errorf("classify(%q, %q, %d, %v) = %v, want %v", tc.op, tc.typ, tc.status, tc.err, got, tc.want)
		}
	}
}

func TestWrapKeepsProblemAndRetryAfter(t *testing.T) {
	s := new(sink)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.set(at)
	p := acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "too many", Status: 429,
		Subproblems: []acme.Subproblem{{Problem: acme.Problem{Type: acme.ProblemTypeCAA, Detail: "no"}, Identifier: acme.Identifier{Value: "a.example"}}}}
	err := wrap("new order", fmt.Errorf("attempt 1: %w", p), s)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %T", err)
	}
	if e.Class != RateLimited || !e.RetryAfter.Equal(at) || e.Detail != "too many" || e.Status != 429 {
		t.Errorf("wrapped = %+v", e)
	}
	if ClassOf(fmt.Errorf("obtain: %w", err)) != RateLimited || !RetryAfterOf(fmt.Errorf("obtain: %w", err)).Equal(at) {
		t.Error("class or Retry-After lost through wrapping")
	}
	want := "new order: rateLimited (HTTP 429): too many; a.example: caa no (retry after 2026-01-02T03:04:05Z)"
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
	var ap acme.Problem
	if !errors.As(err, &ap) {
		t.Error("the protocol library's problem is not reachable with errors.As")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"120", now.Add(2 * time.Minute), true},
		{"0", now, true},
		{"99999999", now.Add(7 * 24 * time.Hour), true},
		{now.Add(time.Hour).Format(http.TimeFormat), now.Add(time.Hour), true},
		{"007", now.Add(7 * time.Second), true},
		{"99999999999999999999999", now.Add(7 * 24 * time.Hour), true}, // past uint64
		// An HTTP date is capped like delay seconds (RFC 9110 §10.2.3).
		{now.AddDate(10, 0, 0).Format(http.TimeFormat), now.Add(7 * 24 * time.Hour), true},
		{now.Add(7*24*time.Hour + time.Second).Format(time.RFC850), now.Add(7 * 24 * time.Hour), true},
		{now.Add(-time.Hour).Format(http.TimeFormat), now.Add(-time.Hour), true},
		{"+5", time.Time{}, false},
		{"", time.Time{}, false},
		{"-5", time.Time{}, false},
		{"12abc", time.Time{}, false},
		{"soon", time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// scripted answers each request with the next status of its script: 400
// badNonce or 200.
type scripted struct{ codes []int }

func (s *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	code := s.codes[0]
	s.codes = s.codes[1:]
	body := "{}"
	if code == http.StatusBadRequest {
		body = `{"type":"` + acme.ProblemTypeBadNonce + `"}`
	}
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// TestBadNonceBudget: a call fails after maxBadNonces badNonce answers in
// a row, without sending more; answers in between reset the count, so a
// long call (finalize and poll) against a CA rejecting some nonces is not
// cut short.
func TestBadNonceBudget(t *testing.T) {
	bad, ok := http.StatusBadRequest, http.StatusOK
	var codes []int
	for range 2 { // just under the budget, then an accepted nonce
		for range maxBadNonces - 1 {
			codes = append(codes, bad)
		}
		codes = append(codes, ok)
	}
	for range maxBadNonces {
		codes = append(codes, bad)
	}
	codes = append(codes, ok)
	tr := &retryAfterTransport{base: &scripted{codes: codes}}
	ctx, _ := withSink(context.Background(), EndpointNewOrder)
	for i := range len(codes) - 1 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://ca.invalid/x", strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if (resp.StatusCode == bad) != strings.Contains(string(b), "badNonce") {
			t.Fatalf("request %d: the body was not put back: %q", i+1, b)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://ca.invalid/x", strings.NewReader("{}"))
	if _, err := tr.RoundTrip(req); !errors.Is(err, errBadNonceStorm) {
		t.Fatalf("after %d badNonce answers in a row: %v, want errBadNonceStorm", maxBadNonces, err)
	}
}
