package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// world is a Manager obtaining certificates from Pebble, reporting to
// Metrics, and the admin Handler over both, served on loopback.
type world struct {
	p       *testenv.Pebble
	m       *tlspilot.Manager
	metrics *admin.Metrics
	url     string // of the admin server
	// failed counts the failed events the metrics were given: a
	// failure shows in Status before its event is sent.
	failed atomic.Int64
}

// newWorld starts Pebble, a Manager that answers its challenges and runs
// until the test ends, and the admin Handler on an httptest server. edit,
// if not nil, changes the Manager's Config first.
func newWorld(t *testing.T, opts testenv.PebbleOptions, edit func(*tlspilot.Config)) *world {
	t.Helper()
	w := &world{p: testenv.StartPebble(t, opts), metrics: admin.NewMetrics()}
	cfg := tlspilot.Config{
		CA:         w.p.DirectoryURL,
		CARoots:    w.p.Roots,
		Email:      "ops@example.test",
		AgreeTerms: true,
		StorageDir: t.TempDir(),
		RetryMin:   time.Second,
		RetryMax:   3 * time.Second,
		Metrics:    w.metrics,
		OnEvent: func(ev tlspilot.Event) {
			if ev.Type == tlspilot.EventFailed {
				w.failed.Add(1)
			}
			w.metrics.Event(ev)
		},
		Logger: testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := tlspilot.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w.m = m
	serveChallenges(t, w.p, m)
	run(t, m)
	h, err := admin.New(admin.Options{Source: m, Metrics: w.metrics, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// run runs m until the test ends.
func run(t *testing.T, m *tlspilot.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// serveChallenges serves m's http-01 answers and TLS config on the ports
// Pebble validates on.
func serveChallenges(t *testing.T, p *testenv.Pebble, m *tlspilot.Manager) {
	t.Helper()
	hs := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(listen(t, p.HTTPPort)) }()
	ts := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: m.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ts.ServeTLS(listen(t, p.TLSPort), "", "") }()
	t.Cleanup(func() {
		_ = hs.Close()
		_ = ts.Close()
	})
}

// listen binds 127.0.0.1:port, retrying while an earlier test releases it.
func listen(t *testing.T, port int) net.Listener {
	t.Helper()
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listen on port %d: %v", port, err)
	return nil
}

// waitFor polls until ok reports true for m's certificates, failing the
// test after timeout.
func waitFor(t *testing.T, m *tlspilot.Manager, timeout time.Duration, what string, ok func([]tlspilot.CertStatus) bool) []tlspilot.CertStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := m.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v: %+v", what, timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// byNames returns the status of the certificate whose first name is n.
func byNames(st []tlspilot.CertStatus, n string) (tlspilot.CertStatus, bool) {
	for _, s := range st {
		if len(s.Names) > 0 && s.Names[0] == n {
			return s, true
		}
	}
	return tlspilot.CertStatus{}, false
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// testLogger logs through t.Log when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
