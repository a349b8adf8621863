package notify

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hit is one request a redirectServer got.
type hit struct {
	method, path string
	body         []byte
}

// redirectServer is a real HTTP server that answers POST / with code and
// a Location, and anything else with 200; it records every request.
type redirectServer struct {
	mu   sync.Mutex
	hits []hit
	srv  *httptest.Server
}

func (h hit) String() string { return fmt.Sprintf("%s %s (%d bytes)", h.method, h.path, len(h.body)) }

func newRedirectServer(t *testing.T, code int, location func(self string) string) *redirectServer {
	t.Helper()
	s := &redirectServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		s.mu.Lock()
		s.hits = append(s.hits, hit{req.Method, req.URL.Path, body})
		s.mu.Unlock()
		if req.Method == http.MethodPost && req.URL.Path == "/" {
			w.Header().Set("Location", location(s.srv.URL))
			w.WriteHeader(code)
		}
		_, _ = io.WriteString(w, "moved")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *redirectServer) requests() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// TestWebhookRedirectNotFollowed: a 302 (to the same host) or a 307 (to
// another host, which would get the signed body again) is not followed,
// with the default client or one given in Options: each is a failed
// delivery, tried again like a 5xx, then logged at ERROR with the status
// and the Location.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		code   int
		client *http.Client
		other  bool // redirect to another server
	}{
		{"302 same host", http.StatusFound, nil, false},
		{"307 other host", http.StatusTemporaryRedirect, nil, true},
		{"308 other host, caller's client", http.StatusPermanentRedirect, &http.Client{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			elsewhere := newRedirectServer(t, http.StatusOK, func(string) string { return "" })
			location := func(self string) string { return self + "/other" }
			if tt.other {
				location = func(string) string { return elsewhere.srv.URL + "/other" }
			}
			r := newRedirectServer(t, tt.code, location)
			l := &logs{}
			n := newNotifier(t, Options{Webhook: r.srv.URL + "/", WebhookSecret: []byte("k"), Client: tt.client, Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			if tt.client != nil && tt.client.CheckRedirect != nil {
				t.Error("New changed the caller's Client")
			}

			got := r.requests()
			if len(got) != webhookAttempts {
				t.Errorf("receiver got %d requests, want %d POST / (%v)", len(got), webhookAttempts, got)
			}
			for _, h := range got {
				if h.method != http.MethodPost || h.path != "/" || len(h.body) == 0 {
					t.Errorf("receiver got %s %s with %d bytes; the redirect was followed", h.method, h.path, len(h.body))
				}
			}
			if got := elsewhere.requests(); len(got) != 0 {
				t.Errorf("the other host got %v; the redirect was followed", got)
			}
			if rec := l.records(t, "notify webhook delivered"); len(rec) != 0 {
				t.Errorf("a redirect counted as delivered; log:\n%s", l)
			}
			rec := l.records(t, "notify webhook failed")
			if len(rec) != 1 || rec[0]["level"] != "ERROR" || rec[0]["attempt"] != float64(webhookAttempts) {
				t.Fatalf("log:\n%s", l)
			}
			msg, _ := rec[0]["error"].(string)
			if !strings.Contains(msg, http.StatusText(tt.code)) || !strings.Contains(msg, location(r.srv.URL)) {
				t.Errorf("error %q names neither the status %d nor the Location %s", msg, tt.code, location(r.srv.URL))
			}
		})
	}
}
