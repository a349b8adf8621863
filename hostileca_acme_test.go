package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestHostileCAHugeCertificate: the CA answers the certificate download
// with a valid chain followed by 64 MiB. The client must stop reading
// long before the end (a chain is kilobytes) and refuse the answer, not
// hold the whole body in memory (and then store it).
func TestHostileCAHugeCertificate(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	var read atomic.Int64
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if !strings.HasPrefix(req.URL.Path, "/certZ/") || resp.StatusCode != http.StatusOK {
			return resp
		}
		chain, _ := io.ReadAll(resp.Body)
		resp.Body = &countingBody{prefix: chain, left: 64 << 20, read: &read}
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return resp
	})
	_, ev := hostileManager(t, p, h, "huge.hostile.test")
	e := outcome(t, ev, 60*time.Second)
	if n := read.Load(); n > hostileLimit {
		t.Errorf("client read %d MiB of the certificate answer (a chain is kilobytes; limit %d MiB)", n>>20, hostileLimit>>20)
	}
	if e.Type == EventObtained {
		t.Errorf("a 64 MiB certificate answer was accepted")
	}
}

// TestHostileCADirectory: a directory that lacks endpoints, redirects to
// itself, or is huge fails the attempt with an error (no panic, a
// bounded read), and the attempt is retried later. Each case has its own
// Pebble (its own directory URL): the protocol library caches
// directories process-wide by URL (see TestHostileCADirectoryRecovers).
func TestHostileCADirectory(t *testing.T) {
	drop := func(key string) func(req *http.Request, resp *http.Response) *http.Response {
		return func(req *http.Request, resp *http.Response) *http.Response {
			if req.URL.Path != "/dir" {
				return resp
			}
			return editJSON(resp, func(m map[string]any) { delete(m, key) })
		}
	}
	var read atomic.Int64
	for _, tc := range []struct {
		name   string
		tamper func(req *http.Request, resp *http.Response) *http.Response
	}{
		{"no newNonce", drop("newNonce")},
		{"no newAccount", drop("newAccount")},
		{"no newOrder", drop("newOrder")},
		{"redirect loop", func(req *http.Request, resp *http.Response) *http.Response {
			if req.URL.Path != "/dir" {
				return resp
			}
			resp.StatusCode, resp.Status = http.StatusFound, "302 Found"
			resp.Header.Set("Location", req.URL.String())
			return setBody(resp, nil)
		}},
		{"huge", func(req *http.Request, resp *http.Response) *http.Response {
			if req.URL.Path != "/dir" {
				return resp
			}
			resp.Body.Close()
			resp.Body = &countingBody{prefix: []byte(`{"x":"`), left: 64 << 20, read: &read}
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
			return resp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testenv.StartPebble(t, testenv.PebbleOptions{})
			h := newHostile(p)
			h.set(tc.tamper)
			read.Store(0)
			_, ev := hostileManager(t, p, h, "dir.hostile.test")
			e := outcome(t, ev, 60*time.Second)
			if e.Type != EventFailed || e.Err == nil || e.RetryAt.IsZero() {
				t.Errorf("event %s err=%v retry_at=%v, want a failure with a retry time", e.Type, e.Err, e.RetryAt)
			}
			if n := read.Load(); n > hostileLimit {
				t.Errorf("client read %d MiB of the directory (limit %d MiB)", n>>20, hostileLimit>>20)
			}
			t.Logf("error: %v", e.Err)
		})
	}
}

// TestHostileCADirectoryRecovers: directory answers that lack an
// endpoint (newNonce) fail the attempt; once the CA answers properly
// again, the next attempt must fetch the directory anew and succeed, not
// keep the broken one (for 12 hours, process-wide). The CA stays broken
// until the first attempt has failed: the client may retry the directory
// request within an attempt, so one broken answer alone need not fail it.
func TestHostileCADirectoryRecovers(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	var broken atomic.Bool
	broken.Store(true)
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if req.URL.Path != "/dir" || !broken.Load() {
			return resp
		}
		return editJSON(resp, func(m map[string]any) { delete(m, "newNonce") })
	})
	_, ev := hostileManager(t, p, h, "recover.hostile.test")
	e := outcome(t, ev, 30*time.Second)
	if e.Type != EventFailed {
		t.Fatalf("first attempt: %s, want failed", e.Type)
	}
	if !strings.Contains(fmt.Sprint(e.Err), "newNonce") {
		t.Errorf("first attempt: %v, want an error naming newNonce", e.Err)
	}
	broken.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for len(ev.of(EventObtained)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(ev.of(EventObtained)) == 0 {
		fails := ev.of(EventFailed)
		t.Errorf("after the CA answered properly again, %d attempts failed in 30s (%d directory requests); last: %v",
			len(fails), h.count("/dir"), fails[len(fails)-1].Err)
	}
}

// TestHostileCARetryAfter: new orders are refused (429 or 503) with odd
// Retry-After values. A retry time must never come before the CA's
// Retry-After when that is sane, must not make an immediate retry when it
// is 0, negative, junk or in the past, and must be bounded (the client
// caps delay-seconds at 7 days; an HTTP-date must be capped the same), so
// that a certificate in service is retried before it expires. The
// certificate in service stays in service throughout.
func TestHostileCARetryAfter(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	const week = 7 * 24 * time.Hour
	tenYears := time.Now().Add(10 * 365 * 24 * time.Hour)
	for _, tc := range []struct {
		name     string
		code     int
		value    string
		min, max time.Duration // of RetryAt - failure time
	}{
		{"429 zero", 429, "0", 400 * time.Millisecond, 10 * time.Second},
		{"429 negative", 429, "-5", 400 * time.Millisecond, 10 * time.Second},
		{"429 junk", 429, "soon", 400 * time.Millisecond, 10 * time.Second},
		{"429 date in the past", 429, time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 400 * time.Millisecond, 10 * time.Second},
		{"429 one hour", 429, "3600", time.Hour - time.Minute, time.Hour + time.Minute},
		{"429 ten years in seconds", 429, "315360000", week - time.Minute, week + time.Minute},
		{"429 ten years as a date", 429, tenYears.UTC().Format(http.TimeFormat), week - time.Minute, week + time.Minute},
		{"503 ten years as a date", 503, tenYears.UTC().Format(http.TimeFormat), week - time.Minute, week + time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostile(p)
			const name = "ra.hostile.test"
			m, ev := hostileManager(t, p, h, name)
			waitServing(t, m, 30*time.Second)
			old := servedSerial(t, m, name)
			h.set(func(req *http.Request, resp *http.Response) *http.Response {
				if req.URL.Path != "/order-plz" {
					return resp
				}
				resp.StatusCode, resp.Status = tc.code, http.StatusText(tc.code)
				resp.Header.Set("Content-Type", "application/problem+json")
				resp.Header.Set("Retry-After", tc.value)
				typ := "rateLimited"
				if tc.code == 503 {
					typ = "serverInternal"
				}
				return setBody(resp, []byte(fmt.Sprintf(`{"type":"urn:ietf:params:acme:error:%s","detail":"hostile","status":%d}`, typ, tc.code)))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m.Renew(ctx, RenewOptions{Force: true}); err == nil {
				t.Fatal("renewal succeeded")
			}
			fails := ev.of(EventFailed)
			if len(fails) == 0 {
				t.Fatal("no failed event")
			}
			f := fails[len(fails)-1]
			if d := f.RetryAt.Sub(f.Time); d < tc.min || d > tc.max {
				t.Errorf("Retry-After %q: retry in %v, want between %v and %v", tc.value, d.Round(time.Second), tc.min, tc.max)
			}
			st := m.Status()[0]
			if !st.Serving || servedSerial(t, m, name) != old {
				t.Errorf("certificate in service replaced or dropped: %+v", st)
			}
			if st.NextRenewal.After(st.NotAfter) {
				t.Errorf("next attempt %v is after the certificate in service expires (%v)", st.NextRenewal, st.NotAfter)
			}
		})
	}
}

// pollCA is an in-memory CA whose orders stay "processing" forever, each
// answer with the Retry-After given: Pebble cannot be made to.
type pollCA struct {
	retryAfter string
	polls      atomic.Int64
	nonce      atomic.Int64
}

const pollBase = "https://poll.invalid"

func (c *pollCA) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	nonce := fmt.Sprintf("n%d", c.nonce.Add(1))
	path := strings.TrimPrefix(req.URL.String(), pollBase)
	order := `{"status":"processing","identifiers":[{"type":"dns","value":"poll.example"}],"authorizations":[],"finalize":"` +
		pollBase + `/finalize/1"}`
	h := http.Header{"Retry-After": {c.retryAfter}, "Location": {pollBase + "/order/1"}}
	switch path {
	case "/dir":
		return answer(req, http.StatusOK, "application/json", `{"newNonce":"`+pollBase+`/nonce","newAccount":"`+pollBase+
			`/acct","newOrder":"`+pollBase+`/new-order"}`, nonce, nil), nil
	case "/nonce":
		return answer(req, http.StatusOK, "", "", nonce, nil), nil
	case "/finalize/1":
		return answer(req, http.StatusOK, "application/json", order, nonce, h), nil
	case "/order/1":
		c.polls.Add(1)
		return answer(req, http.StatusOK, "application/json", order, nonce, h), nil
	}
	return answer(req, http.StatusNotFound, "", "", nonce, nil), nil
}

// TestHostileCAOrderPolling: an order that stays "processing" is polled
// at a sane pace and for a bounded time whatever its Retry-After says: 0,
// a date in the past or junk must not make the client poll in a tight
// loop, and a Retry-After of ten years must not hold the order (and a
// worker) for longer than the poll timeout. The error then says the order
// is still processing after the poll timeout (it was acmez's "order took
// too long").
func TestHostileCAOrderPolling(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		timeout  = 2 * time.Second
	)
	for _, tc := range []struct{ name, value string }{
		{"zero", "0"},
		{"date in the past", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)},
		{"junk", "soon"},
		{"ten years", "315360000"},
		{"ten years as a date", time.Now().Add(10 * 365 * 24 * time.Hour).UTC().Format(http.TimeFormat)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := &pollCA{retryAfter: tc.value}
			c, err := acmeclient.New(acmeclient.Config{Directory: pollBase + "/dir", Transport: ca,
				PollInterval: interval, PollTimeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"poll.example"}}, key)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			_, err = c.Finalize(ctx, acmeclient.Account{URL: pollBase + "/acct/1", Key: key},
				acmeclient.Order{URL: pollBase + "/order/1", Status: "ready", Finalize: pollBase + "/finalize/1"}, csr)
			took := time.Since(start)
			if err == nil {
				t.Fatal("an order that never left processing was finalized")
			}
			if !strings.Contains(err.Error(), "still processing at the CA after the poll timeout of 2s") {
				t.Errorf("the error does not say the order is still processing after the poll timeout: %v", err)
			}
			if took > timeout+3*time.Second {
				t.Errorf("Retry-After %q held the order for %v (poll timeout %v)", tc.value, took.Round(time.Second), timeout)
			}
			if n := ca.polls.Load(); n > int64(timeout/interval)+5 {
				t.Errorf("Retry-After %q: %d polls in %v, want at most about one per %v", tc.value, n, took.Round(time.Millisecond), interval)
			}
			t.Logf("%d polls in %v: %v", ca.polls.Load(), took.Round(time.Millisecond), err)
		})
	}
}

// TestHostileCAAuthzRetryAfter: while it validates, the CA asks (RFC
// 8555 §7.5.1, Retry-After on the authorization) to be polled no more
// than every 2s. A client respecting Retry-After polls the authorization
// at most about twice in the 4s the validation takes.
func TestHostileCAAuthzRetryAfter(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	var (
		mu       sync.Mutex
		accepted time.Time
		polls    int
	)
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(req.URL.Path, "/chalZ/") && accepted.IsZero():
			accepted = time.Now()
		case strings.HasPrefix(req.URL.Path, "/authZ/") && !accepted.IsZero() && time.Since(accepted) < 4*time.Second:
			polls++
			resp.Header.Set("Retry-After", "2")
			return editJSON(resp, func(m map[string]any) {
				m["status"] = "pending"
				chs, _ := m["challenges"].([]any)
				for _, c := range chs {
					if c, ok := c.(map[string]any); ok {
						c["status"] = "processing"
					}
				}
			})
		}
		return resp
	})
	m, _ := hostileManager(t, p, h, "authz.hostile.test")
	waitServing(t, m, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if polls > 3 {
		t.Errorf("%d authorization polls in the 4s the CA asked to be polled every 2s", polls)
	}
	t.Logf("%d authorization polls in 4s", polls)
}
