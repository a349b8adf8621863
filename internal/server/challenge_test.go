package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// challengeHook answers like the ACME Manager's HTTPHandler: the key
// authorization of a token it holds, 404 for any other token under the
// challenge path, 400 for a token outside the base64url alphabet, and
// next for every other path.
func challengeHook(held map[string]string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.URL.Path, challengePath)
			switch {
			case !ok:
				next.ServeHTTP(w, r)
			case strings.ContainsAny(tok, "./"):
				http.Error(w, "malformed challenge token", http.StatusBadRequest)
			case held[tok] == "":
				http.NotFound(w, r)
			default:
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Cache-Control", "no-store")
				w.Write([]byte(held[tok]))
			}
		})
	}
}

// challengePath is where a CA fetches http-01 answers (RFC 8555 §8.3).
const challengePath = "/.well-known/acme-challenge/"

// recorder is an upstream that notes the paths it was asked for.
type recorder struct {
	mu    sync.Mutex
	paths []string
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.paths = append(u.paths, r.Method+" "+r.URL.Path)
	u.mu.Unlock()
	fmt.Fprintf(w, "upstream %s %s", r.Method, r.URL.Path)
}

func (u *recorder) saw() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...)
}

// caClient talks to the server as a CA's validation authority does after
// following a redirect: certificates unchecked, HTTP/1.1, no redirects
// followed here. https URLs go to the HTTPS listener, http URLs to the
// plain one, whatever name they carry (sent as SNI and Host).
func (ts *testServer) caClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to := ts.httpAddr
			if strings.HasSuffix(addr, ":443") {
				to = ts.httpsAddr
			}
			var d net.Dialer
			return d.DialContext(ctx, network, to)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// TestChallengeEveryListener: an http-01 request for a token the ACME
// hook holds is answered by the HTTPS listener and by plain HTTP, before
// any site routing, for a site of each kind (static, proxy, redirect,
// none, the default site, a site with its own certificate files); a
// proxy never sees it. A token the hook does not hold goes on to the site
// as any request would, so a site's own files under the challenge path
// keep working.
func TestChallengeEveryListener(t *testing.T) {
	const tok, ka = "held_Token-1", "held_Token-1.thumbprint"
	names := []string{"static.test", "proxy.test", "redirect.test", "empty.test", "default.test", "plain.test", "files.test"}
	c := newTestCert(t, names...)
	root := staticSite(t)
	writeFile(t, filepath.Join(root, ".well-known", "acme-challenge", "site-token"), "the site's own file")
	writeFile(t, filepath.Join(root, ".well-known", "acme-challenge", "test.txt"), "a test file")
	up := &recorder{}
	ups := startUpstream(t, up)
	ts := startServer(t, Options{ACMEHTTP: challengeHook(map[string]string{tok: ka}), Sites: []Site{
		{Names: []string{"static.test"}, Root: root, HSTS: true, HTTPRedirect: true, Cert: c.source()},
		{Names: []string{"proxy.test"}, Proxy: []string{"http://" + ups.addr}, Cert: c.source()},
		{Names: []string{"redirect.test"}, Redirect: "https://static.test{uri}", HTTPRedirect: true, Cert: c.source()},
		{Names: []string{"empty.test"}, Cert: c.source()},
		{Names: []string{"default.test"}, Default: true, Redirect: "https://static.test/", Cert: c.source()},
		{Names: []string{"plain.test"}, Root: root, Cert: c.source()},
		{Names: []string{"files.test"}, Root: root, Cert: c.files()},
	}}, c)
	cl := ts.caClient(t)

	hosts := append(names, "unknown.test") // unknown: the default site
	for _, scheme := range []string{"https", "http"} {
		for _, host := range hosts {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				url := scheme + "://" + host + challengePath + tok
				resp, body := do(t, cl, method, url)
				if method == http.MethodGet && body != ka || resp.StatusCode != 200 ||
					resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("%s %s: %d %q %v, want 200 %q from the ACME hook", method, url, resp.StatusCode, body, resp.Header, ka)
				}
			}
		}
	}
	if got := up.saw(); len(got) != 0 {
		t.Errorf("the proxy site forwarded a challenge the hook answers: %q", got)
	}

	port := ts.httpsAddr[strings.LastIndexByte(ts.httpsAddr, ':'):]
	notHeld := []struct {
		method, url string
		code        int
		body, loc   string
	}{
		{"GET", "https://static.test" + challengePath + "site-token", 200, "the site's own file", ""},
		{"GET", "https://files.test" + challengePath + "test.txt", 200, "a test file", ""},
		{"GET", "https://proxy.test" + challengePath + "other", 200, "upstream GET " + challengePath + "other", ""},
		{"POST", "https://proxy.test" + challengePath + tok, 200, "upstream POST " + challengePath + tok, ""},
		{"GET", "https://redirect.test" + challengePath + "other", 308, "", "https://static.test" + challengePath + "other"},
		{"GET", "https://empty.test" + challengePath + "other", 404, "404 page not found\n", ""},
		{"GET", "http://plain.test" + challengePath + "site-token", 200, "the site's own file", ""},
		{"GET", "http://static.test" + challengePath + "other", 308, "", "https://static.test" + port + challengePath + "other"},
		{"GET", "http://unknown.test" + challengePath + "other", 308, "", "https://static.test/"}, // the default site
	}
	for _, tc := range notHeld {
		resp, body := do(t, cl, tc.method, tc.url)
		if resp.StatusCode != tc.code || body != tc.body || resp.Header.Get("Location") != tc.loc {
			t.Errorf("%s %s: %d %q Location %q; want the site's answer %d %q %q",
				tc.method, tc.url, resp.StatusCode, body, resp.Header.Get("Location"), tc.code, tc.body, tc.loc)
		}
	}
	if resp, _ := do(t, cl, "GET", "https://static.test"+challengePath+"site-token"); resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("a request the site answers lacks the site's headers")
	}
}

// do sends one request without a body and returns the response with its
// body read.
func do(t *testing.T, c *http.Client, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}
