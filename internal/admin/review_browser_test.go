package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// fetchLog records, for every request the admin Handler answered, the
// fetch metadata the browser sent and the answer.
type fetchLog struct {
	h    http.Handler
	mu   sync.Mutex
	seen []fetched
}

type fetched struct {
	method, uri, site, mode, dest string
	code                          int
}

func (l *fetchLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	l.h.ServeHTTP(sw, r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, fetched{r.Method, r.RequestURI, r.Header.Get("Sec-Fetch-Site"),
		r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest"), sw.code})
}

func (l *fetchLog) requests() []fetched {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fetched(nil), l.seen...)
}

// serveLogged serves the admin Handler, its page refreshing every
// refresh, on http://127.0.0.1:PORT.
func serveLogged(t *testing.T, refresh time.Duration) (string, *fetchLog) {
	t.Helper()
	rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("ok", nil)}, nil)
	h, err := admin.New(admin.Options{Source: fakeSource{rep}, Logger: testLogger(t), Refresh: refresh})
	if err != nil {
		t.Fatal(err)
	}
	l := &fetchLog{h: h}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv.URL, l
}

// TestReviewPageRefreshesInChromium: the status page, opened directly
// or from a link on another site's page, reloads itself (meta refresh)
// and every reload is answered.
func TestReviewPageRefreshesInChromium(t *testing.T) {
	for _, how := range []string{"direct", "link"} {
		t.Run(how, func(t *testing.T) {
			adminURL, log := serveLogged(t, time.Second)
			open := adminURL + "/"
			if how == "link" {
				open = serveAttacker(t, `<!DOCTYPE html><script>location.href = "`+adminURL+`/";</script>`)
			}
			browse(t, open, 5*time.Second)
			seen := log.requests()
			pages := 0
			for _, s := range seen {
				if s.uri == "/" {
					pages++
				}
				if s.code != http.StatusOK && s.uri != "/favicon.ico" {
					t.Errorf("%s %s (Sec-Fetch-Site %q, Mode %q, Dest %q) answered %d", s.method, s.uri, s.site, s.mode, s.dest, s.code)
				}
			}
			if pages < 2 {
				t.Errorf("the page was loaded %d times in 4.5 s with a 1 s refresh: %+v", pages, seen)
			}
			t.Logf("%+v", seen)
		})
	}
}

// TestReviewOtherWaysFromAPage: the other ways a page can make the
// browser send requests to the listener (a navigation by window.open or a
// form GET, a prefetch, a HEAD fetch, a fetch that needs a preflight)
// reach no profile.
func TestReviewOtherWaysFromAPage(t *testing.T) {
	adminURL, log := serveLogged(t, 0)
	attack := `<!DOCTYPE html><html><head>
<link rel="prefetch" href="` + adminURL + `/debug/pprof/heap?gc=1&prefetch">
</head><body>
<form id="f" method="GET" action="` + adminURL + `/debug/pprof/profile" target="_blank"><input name="seconds" value="1"></form>
<script>
fetch("` + adminURL + `/debug/pprof/heap?gc=1&head", {method: "HEAD", mode: "no-cors"}).catch(() => {});
fetch("` + adminURL + `/debug/pprof/heap?gc=1&preflight", {method: "GET", headers: {"X-Any": "1"}}).catch(() => {});
fetch("` + adminURL + `/debug/pprof/heap?gc=1&put", {method: "PUT", body: "x"}).catch(() => {});
window.open("` + adminURL + `/debug/pprof/trace?seconds=1&open");
document.getElementById("f").submit();
</script></body></html>`
	browse(t, serveAttacker(t, attack), 5*time.Second)
	seen := log.requests()
	if len(seen) == 0 {
		t.Fatal("Chromium sent nothing")
	}
	for _, s := range seen {
		t.Logf("%+v", s)
		if s.code != http.StatusForbidden && s.uri != "/favicon.ico" {
			t.Errorf("%s %s (Sec-Fetch-Site %q, Mode %q, Dest %q) answered %d, want 403", s.method, s.uri, s.site, s.mode, s.dest, s.code)
		}
	}
}

// browse has headless Chromium show url for d of real time, then ends it.
func browse(t *testing.T, url string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-popup-blocking", "--user-data-dir="+profileDir(t), url)
	cmd.WaitDelay = time.Second
	_ = cmd.Run()
}

// profileDir is a Chromium profile directory removed when the test ends,
// as far as the browser's children, which may outlive it a moment, let.
func profileDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
