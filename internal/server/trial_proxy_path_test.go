package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestTrialProxyDotSegments: a request path with "." or ".." segments,
// written plainly or percent-encoded ("%2e%2e", "..%2f"), is routed on
// the path decoded and cleaned (cleanPath), and its upstream must get
// that same path. Sent as the client wrote it, "/x/../../secret"
// reached an upstream mounted at /app/ as "/app/x/../../secret", which
// an upstream that resolves dot segments (RFC 3986 §5.2.4, as Tomcat
// and most frameworks do) serves from "/secret", outside /app/; and
// "/admin/..%2fx", routed to the site's main upstream as "/x", reached
// it as "/admin/..%2fx", a path under /admin/ for an upstream that
// decodes before it resolves, past the /admin/ route (and
// require_paths). Paths without dot segments pass byte for byte.
func TestTrialProxyDotSegments(t *testing.T) {
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.RequestURI), r.RequestURI)
		return true
	})
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr + "/app/"}, Cert: c.source(),
		Routes: []Route{{Path: "/admin/", Proxy: []string{"http://" + up.addr + "/adm/"}}}}}}, c)
	for _, tc := range []struct{ path, want string }{
		{"/x/../../secret", "/app/secret"},
		{"/x/%2e%2e/%2E%2e/secret", "/app/secret"},
		{"/x/.%2e/.%2e/secret?q=1", "/app/secret?q=1"},
		{"/admin/..%2fx", "/app/x"},
		{"/admin/%2e%2e", "/app/"},
		{"/public/..%2fadmin/y", "/adm/admin/y"},
		{"/public/../admin/", "/adm/admin/"},
		{"/a/./b/", "/app/a/b/"},
		{"/a//b/../c", "/app/a/c"},
		{"/a/b/.", "/app/a/b"},
		{"/admin/x%2F..", "/adm/admin"}, // decoded: /admin/x/..
		// No dot segment: as the client wrote it.
		{"/a//b/", "/app/a//b/"},
		{"/a/x%2Fy", "/app/a/x%2Fy"},
		{"/a/..b/.c/c.", "/app/a/..b/.c/c."},
		{"/a/%2e%2ex", "/app/a/%2e%2ex"},
	} {
		for _, h2 := range []bool{false, true} {
			code, body, err := fetchBody(t.Context(), ts.client(t, h2), http.MethodGet, "https://a.test"+tc.path, "")
			if code != 200 || body != tc.want {
				t.Errorf("%s (HTTP/2 %v): upstream got %q (%d %v), want %q", tc.path, h2, body, code, err, tc.want)
			}
		}
	}
	// As written on the wire, not through a client that might tidy it.
	n := len(up.bytes())
	rawExchange(t, ts, "GET /x/../../secret HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if got := requestLine(up.bytes()[n:]); got != "GET /app/secret HTTP/1.1" {
		t.Errorf("raw /x/../../secret reached the upstream as %q", got)
	}
}

// TestTrialProxyBackslashDotSegments: the same climb spelled with
// backslashes, which upstreams on Windows (IIS, ASP.NET) read as '/':
// "/x\..\..\secret" went to an upstream mounted at /app/ as
// "/app/x%5C..%5C..%5Csecret", which such an upstream serves from
// "/secret". A path with a dot segment between backslashes is refused
// with 400; a backslash elsewhere passes.
func TestTrialProxyBackslashDotSegments(t *testing.T) {
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.RequestURI), r.RequestURI)
		return true
	})
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr + "/app/"}, Cert: c.source()}}}, c)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{`/x\..\..\secret`, 400, ""},
		{"/x%5C..%5c..%5Csecret", 400, ""},
		{"/x%5c%2e%2e/secret", 400, ""},
		{`/a\.\b`, 400, ""},
		{"/a%5Cb", 200, "/app/a%5Cb"},
		{`/a\b..c\.d`, 200, "/app/a%5Cb..c%5C.d"},
	} {
		resp := rawExchange(t, ts, "GET "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		want := fmt.Sprintf("HTTP/1.1 %d ", tc.code)
		if !strings.HasPrefix(resp, want) || !strings.HasSuffix(resp, "\r\n\r\n"+tc.want) && tc.want != "" {
			t.Errorf("%s: got %q, want %s%s", tc.path, resp, want, tc.want)
		}
	}
	if b := up.bytes(); strings.Contains(b, "..%5") || strings.Contains(b, "%5C.%5C") {
		t.Errorf("a backslash dot segment reached the upstream:\n%s", b)
	}
}
