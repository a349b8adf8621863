package tlspilot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// faultyCA is an in-memory ACME CA that fails in one way, for counting
// what tlspilot sends it over a simulated day (fault injection: a real CA
// cannot be made to fail on cue for a day of fake time).
type faultyCA struct {
	mode string // badNonce, 5xx, refused, rateLimited, timeout

	mu       sync.Mutex
	requests int
	nonce    int
}

const faultyBase = "https://ca.invalid"

func (f *faultyCA) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.requests++
	f.nonce++
	nonce := fmt.Sprintf("nonce%d", f.nonce)
	f.mu.Unlock()
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	switch f.mode {
	case "refused":
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case "timeout":
		<-req.Context().Done() // the client's timeout ends it
		return nil, req.Context().Err()
	}
	path := strings.TrimPrefix(req.URL.String(), faultyBase)
	switch {
	case path == "/dir":
		dir := map[string]string{"newNonce": faultyBase + "/nonce", "newAccount": faultyBase + "/account",
			"newOrder": faultyBase + "/order", "revokeCert": faultyBase + "/revoke", "keyChange": faultyBase + "/key"}
		b, _ := json.Marshal(dir)
		return answer(req, http.StatusOK, "application/json", string(b), nonce, nil), nil
	case path == "/nonce":
		return answer(req, http.StatusOK, "", "", nonce, nil), nil
	}
	switch f.mode {
	case "badNonce":
		return problem(req, http.StatusBadRequest, "badNonce", nonce, nil), nil
	case "5xx":
		return problem(req, http.StatusInternalServerError, "serverInternal", nonce, nil), nil
	case "rateLimited":
		if path == "/account" {
			return answer(req, http.StatusCreated, "application/json", `{"status":"valid"}`, nonce,
				http.Header{"Location": {faultyBase + "/acct/1"}}), nil
		}
		return problem(req, http.StatusTooManyRequests, "rateLimited", nonce, http.Header{"Retry-After": {"3600"}}), nil
	}
	return nil, errors.New("faultyCA: unknown mode " + f.mode)
}

func (f *faultyCA) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func answer(req *http.Request, code int, ctype, body, nonce string, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Replay-Nonce", nonce)
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Header: h, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), ProtoMajor: 1, ProtoMinor: 1}
}

func problem(req *http.Request, code int, typ, nonce string, h http.Header) *http.Response {
	body := fmt.Sprintf(`{"type":"urn:ietf:params:acme:error:%s","detail":"injected %s","status":%d}`, typ, typ, code)
	return answer(req, code, "application/problem+json", body, nonce, h)
}

// TestBackoffOverADay drives each class of failure for a simulated day
// and counts what reaches the CA: every class backs off exponentially
// across attempts (each gap at least the one before until the cap), so
// no class makes a fixed-interval loop, and a day costs a bounded number
// of attempts and requests.
func TestBackoffOverADay(t *testing.T) {
	const (
		maxAttempts = 20 // 1m doubling to the 6h cap: about 12 a day
		maxPerTry   = 25 // requests in one attempt, retries inside included
		retryMax    = 6 * time.Hour
		day         = 24 * time.Hour
	)
	for _, mode := range []string{"badNonce", "5xx", "refused", "rateLimited", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca := &faultyCA{mode: mode}
				ev := &events{}
				cfg := Config{CA: faultyBase + "/dir", AgreeTerms: true, StorageDir: t.TempDir(),
					Logger: testLogger(t), OnEvent: ev.add, caTransport: ca}
				m, err := New(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); _ = m.Run(ctx) }()
				if err := m.Manage(ctx, "day.example.test"); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				for time.Since(start) < day {
					time.Sleep(time.Hour)
					if n := len(ev.of(EventFailed)); n > maxAttempts {
						t.Errorf("%d attempts after %v", n, time.Since(start))
						break
					}
				}
				cancel()
				<-done
				fails := ev.of(EventFailed)
				if len(fails) < 5 {
					t.Fatalf("only %d attempts in a day: retries stopped", len(fails))
				}
				if n := ca.count(); n > len(fails)*maxPerTry {
					t.Errorf("%d requests for %d attempts", n, len(fails))
				}
				var prev time.Duration
				for i := 1; i < len(fails); i++ {
					gap := fails[i].Time.Sub(fails[i-1].Time)
					// Below half the cap the nominal delay doubles, so with
					// jitter in [d/2, d] a gap is never shorter than the one
					// before.
					if gap < retryMax/2 && gap < prev {
						t.Errorf("attempt %d came %v after the one before, which came %v after its own: not backing off", i+1, gap, prev)
					}
					if mode == "rateLimited" && gap < time.Hour {
						t.Errorf("attempt %d came %v after the one before, before the CA's Retry-After (1h)", i+1, gap)
					}
					prev = gap
				}
				if last := fails[len(fails)-1].RetryAt.Sub(fails[len(fails)-1].Time); last < time.Hour {
					t.Errorf("after a day of failures the next retry is in %v", last)
				}
				t.Logf("%s: %d attempts, %d requests in a day", mode, len(fails), ca.count())
			})
		})
	}
}
