package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// TestBrowserRequestsFromOtherSites: a request a browser sends for
// another site's page (Sec-Fetch-Site cross-site or same-site) is refused
// unless it is a top-level navigation to /, /status, /metrics or
// /healthz; a cross-origin POST of a browser that sends only Origin is
// refused too. Requests the user makes and those of programs are
// answered.
func TestBrowserRequestsFromOtherSites(t *testing.T) {
	url, _ := serveFake(t, fakeCert("ok", nil))
	host := strings.TrimPrefix(url, "http://")
	nav := map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	with := func(site string, more map[string]string) map[string]string {
		h := map[string]string{"Sec-Fetch-Site": site}
		for k, v := range more {
			h[k] = v
		}
		return h
	}
	img := map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
	for _, tt := range []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"program", "GET", "/metrics", nil, 200},
		{"typed pprof", "GET", "/debug/pprof/", with("none", nav), 200},
		{"pprof link", "GET", "/debug/pprof/cmdline", with("same-origin", nav), 200},
		{"dashboard link", "GET", "/", with("cross-site", nav), 200},
		{"dashboard link to status", "GET", "/status", with("cross-site", nav), 200},
		{"img profile", "GET", "/debug/pprof/profile?seconds=1", with("cross-site", img), 403},
		{"img heap gc", "GET", "/debug/pprof/heap?gc=1", with("cross-site", img), 403},
		{"img status", "GET", "/status", with("cross-site", img), 403},
		{"same-site img trace", "GET", "/debug/pprof/trace?seconds=1", with("same-site", img), 403},
		{"navigation to trace", "GET", "/debug/pprof/trace?seconds=1", with("cross-site", nav), 403},
		{"navigation to cleaned path", "GET", "//debug/pprof/", with("cross-site", nav), 403},
		{"frame", "GET", "/", with("cross-site", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}), 403},
		{"form post", "POST", "/debug/pprof/symbol", with("cross-site", nav), 403},
		{"post with foreign Origin", "POST", "/debug/pprof/symbol", map[string]string{"Origin": "http://evil.example"}, 403},
		{"post with own Origin", "POST", "/debug/pprof/symbol", map[string]string{"Origin": "http://" + host}, 200},
	} {
		req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(symbolPC()))
		if err != nil {
			t.Fatal(err)
		}
		if tt.method == "GET" {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s %v: %d, want %d", tt.name, tt.method, tt.path, tt.header, resp.StatusCode, tt.want)
		}
	}
}

// TestNeverFramedOrCached: every answer, the profiles' included, forbids
// framing (clickjacking) and caching.
func TestNeverFramedOrCached(t *testing.T) {
	url, _ := serveFake(t, fakeCert("ok", nil))
	for _, path := range []string{"/", "/status", "/metrics", "/healthz", "/debug/pprof/", "/debug/pprof/cmdline", "/nope"} {
		_, h, _ := get(t, url+path)
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Frame-Options %q, Cache-Control %q, X-Content-Type-Options %q",
				path, h.Get("X-Frame-Options"), h.Get("Cache-Control"), h.Get("X-Content-Type-Options"))
		}
	}
}

// TestSymbolBodyBounded: POST /debug/pprof/symbol answers a body of
// addresses as go tool pprof sends it, and refuses a huge one with 413
// instead of holding ten times its size in memory.
func TestSymbolBodyBounded(t *testing.T) {
	url, _ := serveFake(t, fakeCert("ok", nil))
	post := func(body string) (int, string) {
		resp, err := http.Post(url+"/debug/pprof/symbol", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := post(symbolPC() + "+" + symbolPC()); code != 200 || !strings.Contains(body, "symbolPC") {
		t.Errorf("two addresses: %d %q", code, body)
	}
	huge := strings.Repeat(symbolPC()+"+", (4<<20)/(len(symbolPC())+1))
	if code, body := post(huge); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d, %d bytes answered; want 413", len(huge), code, len(body))
	}
}

// symbolPC is an address in this program, written as pprof asks for it.
func symbolPC() string { return fmt.Sprintf("%#x", reflect.ValueOf(symbolPC).Pointer()) }

// recorder records the answer the admin Handler gave to each request.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path, site string
	code               int
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	rec.h.ServeHTTP(sw, r)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.seen = append(rec.seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("Sec-Fetch-Site"), sw.code})
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestCrossSitePageInChromium opens, in headless Chromium, a page of
// another site (http://localhost) that makes the browser send requests
// to the admin listener (http://127.0.0.1): images that start a CPU
// profile and a garbage collection, a form and a fetch that POST to
// /debug/pprof/symbol. Every one is refused. A link from that page to
// the status page still opens it.
func TestCrossSitePageInChromium(t *testing.T) {
	adminURL, rec := serveRecorded(t)
	attack := `<!DOCTYPE html><html><body>
<img src="` + adminURL + `/debug/pprof/profile?seconds=1">
<img src="` + adminURL + `/debug/pprof/heap?gc=1">
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" action="` + adminURL + `/debug/pprof/symbol" target="sink"><input name="` + symbolPC() + `+" value=""></form>
<script>
fetch("` + adminURL + `/debug/pprof/symbol", {method: "POST", mode: "no-cors", body: "` + symbolPC() + `"}).catch(() => {});
document.getElementById("f").submit();
</script></body></html>`
	chromium(t, serveAttacker(t, attack), "--dump-dom", "--virtual-time-budget=5000")
	seen := rec.requests()
	for _, want := range []struct{ method, path string }{
		{"GET", "/debug/pprof/profile"}, {"GET", "/debug/pprof/heap"}, {"POST", "/debug/pprof/symbol"},
	} {
		found := false
		for _, s := range seen {
			found = found || s.method == want.method && s.path == want.path
		}
		if !found {
			t.Errorf("Chromium sent no %s %s: %+v", want.method, want.path, seen)
		}
	}
	for _, s := range seen {
		if s.code != http.StatusForbidden {
			t.Errorf("%s %s from another site (Sec-Fetch-Site %q) answered %d, want 403", s.method, s.path, s.site, s.code)
		}
	}

	link := `<!DOCTYPE html><html><body><script>location.href = "` + adminURL + `/";</script></body></html>`
	if dom := chromium(t, serveAttacker(t, link), "--dump-dom", "--virtual-time-budget=5000"); !strings.Contains(dom, `id="status"`) {
		t.Errorf("a link from another site does not open the status page:\n%.500s", dom)
	}
}

// serveRecorded serves the admin Handler over a fake source on
// 127.0.0.1, recording its answers.
func serveRecorded(t *testing.T) (string, *recorder) {
	t.Helper()
	rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("ok", nil)},
		&tlspilot.AccountStatus{CA: "https://ca.example.test/dir", State: tlspilot.AccountValid})
	h, err := admin.New(admin.Options{Source: fakeSource{rep}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{h: h}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// serveAttacker serves page at http://localhost:PORT/, a site other than
// the admin listener's http://127.0.0.1.
func serveAttacker(t *testing.T, page string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/"
}
