package tlspilot

import (
	"context"
	"crypto/tls"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// uaRecorder carries requests to the CA and notes their User-Agent.
type uaRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen map[string]int
}

func (r *uaRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen[req.Header.Get("User-Agent")]++
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// TestUserAgent: every request to the CA names the program and its
// version first, then acmez and the platform, single-spaced.
func TestUserAgent(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	platform := " acmez (" + runtime.GOOS + "; " + runtime.GOARCH + ")"
	for _, tc := range []struct{ ua, want string }{
		{"tlspilot/v9.8.7", "tlspilot/v9.8.7" + platform},
		{"", "tlspilot" + platform},
	} {
		t.Run(tc.ua, func(t *testing.T) { testUserAgent(t, p, tc.ua, tc.want) })
	}
}

// testUserAgent obtains a certificate with cfg.UserAgent = ua and checks
// that every request to the CA carried want.
func testUserAgent(t *testing.T, p *testenv.Pebble, ua, want string) {
	rec := &uaRecorder{base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}, seen: map[string]int{}}
	cfg := testConfig(t, p, nil)
	cfg.UserAgent, cfg.caTransport = ua, rec
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "ua.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 1 || rec.seen[want] == 0 {
		t.Errorf("UserAgent %q: User-Agent headers sent %v, want only %q", ua, rec.seen, want)
	}
}
