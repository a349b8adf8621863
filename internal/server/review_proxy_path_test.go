package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// reviewPathServer is a site proxying to an upstream mounted at /app/,
// with /admin/ routed to the same upstream's /adm/; the upstream answers
// with the request target it got.
func reviewPathServer(t *testing.T) (*testServer, *recordingUpstream) {
	t.Helper()
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.RequestURI), r.RequestURI)
		return true
	})
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr + "/app/"}, Cert: c.source(),
		Routes: []Route{{Path: "/admin/", Proxy: []string{"http://" + up.addr + "/adm/"}}}}}}, c)
	return ts, up
}

// reviewH2Get sends GET with :path target on a new raw HTTP/2 connection
// to ts and returns the answer's :status and body.
func reviewH2Get(t *testing.T, ts *testServer, target string) (string, string) {
	t.Helper()
	hc := (&hostile{testServer: ts}).dialH2(t)
	defer hc.c.Close()
	hc.request(t, 1, "GET", target, true)
	status := ""
	var body strings.Builder
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	hc.until(5*time.Second, func(fr http2.Frame) bool {
		switch fr := fr.(type) {
		case *http2.HeadersFrame:
			if fr.StreamID == 1 {
				dec.Write(fr.HeaderBlockFragment())
				return fr.StreamEnded()
			}
		case *http2.DataFrame:
			if fr.StreamID == 1 {
				body.Write(fr.Data())
				return fr.StreamEnded()
			}
		case *http2.RSTStreamFrame:
			return fr.StreamID == 1
		}
		return false
	})
	return status, body.String()
}

// TestReviewProxyHiddenDotSegments: a dot segment in a reading of the
// path that upstreams make and cleanPath does not. Tomcat, Jetty and
// Spring remove each segment's path parameters before they resolve dot
// segments, so "/x/..;/admin/y", routed to the site's main upstream as
// it is, reached Tomcat as "/admin/y", past the /admin/ route and
// require_paths (the "..;" bypass); old IIS and Tomcat decoded the
// overlong UTF-8 "%c0%ae" as '.'; C code ends a string at a NUL. Each is refused with 400 and never
// reaches the upstream, on HTTP/1.1 and HTTP/2; path parameters, UTF-8
// and Latin-1 bytes elsewhere pass as the client wrote them.
func TestReviewProxyHiddenDotSegments(t *testing.T) {
	ts, up := reviewPathServer(t)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/x/..;/admin/y", 400, ""},
		{"/x/..;jsessionid=1/admin/y", 400, ""},
		{"/x/.;/y", 400, ""},
		{"/x/%2e%2E;/admin/y", 400, ""},
		{"/x/..%3b/admin/y", 400, ""},
		{`/x\..;\admin`, 400, ""},
		{"/x/%c0%ae%c0%ae/admin/y", 400, ""},
		{"/x/.%C0%AE/y", 400, ""},
		{"/x%c0%af..%c0%afadmin", 400, ""},
		{"/x/%e0%80%ae%e0%80%ae/y", 400, ""},
		{"/x%c1%9c..%c1%9cy", 400, ""},
		{"/x/%f0%80%80%ae./y", 400, ""},
		{"/x/..%00/admin/y", 400, ""},
		{"/x/.%00.txt/y", 400, ""},
		// Other readings without a dot segment, and dot segments cleaned
		// before them.
		{"/a;v=1/b;w=2", 200, "/app/a;v=1/b;w=2"},
		{"/a/;jsessionid=1/b", 200, "/app/a/;jsessionid=1/b"},
		{"/a/..x;y/b", 200, "/app/a/..x;y/b"},
		{"/a/../b;v=1", 200, "/app/b;v=1"},
		{"/caf%C3%A9/%E0%A4%95", 200, "/app/caf%C3%A9/%E0%A4%95"},
		{"/%C0ngstr%F6m/%C0%AEx", 200, "/app/%C0ngstr%F6m/%C0%AEx"},
		{"/a/b%00c/..x%00", 200, "/app/a/b%00c/..x%00"},
	} {
		n := len(up.bytes())
		resp := rawExchange(t, ts, "GET "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		if want := fmt.Sprintf("HTTP/1.1 %d ", tc.code); !strings.HasPrefix(resp, want) || !strings.HasSuffix(resp, "\r\n\r\n"+tc.want) && tc.want != "" {
			t.Errorf("HTTP/1.1 %s: got %q, want %s%s", tc.path, short([]byte(resp), false), want, tc.want)
		}
		status, body := reviewH2Get(t, ts, tc.path)
		if status != fmt.Sprint(tc.code) || tc.want != "" && body != tc.want {
			t.Errorf("HTTP/2 %s: got %s %q, want %d %s", tc.path, status, body, tc.code, tc.want)
		}
		if tc.code != 200 {
			if seen := up.bytes()[n:]; seen != "" {
				t.Errorf("%s reached the upstream as %q", tc.path, requestLine(seen))
			}
		}
	}
}

// TestReviewProxyOpaqueTarget: a request target with a scheme and no
// "//" ("x:admin/secret") is taken by net/http's servers, HTTP/1.1 and
// HTTP/2 (:path), as an opaque URL with an empty path. Routed as "/", it
// went up as "GET admin/secret HTTP/1.1" (or "../../secret"): the
// upstream URL's path (/app/) gone, the rest for the upstream to read
// as it likes, past routes and require_paths. It is refused with 400;
// absolute-form targets still pass.
func TestReviewProxyOpaqueTarget(t *testing.T) {
	ts, up := reviewPathServer(t)
	for _, target := range []string{"x:admin/secret", "x:../../secret", "http:admin/secret", "x:%2Fadmin%2Fsecret"} {
		n := len(up.bytes())
		resp := rawExchange(t, ts, "GET "+target+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 400 ") {
			t.Errorf("HTTP/1.1 %s: got %q, want 400", target, short([]byte(resp), false))
		}
		if status, _ := reviewH2Get(t, ts, target); status != "400" {
			t.Errorf("HTTP/2 %s: got %q, want 400", target, status)
		}
		if seen := up.bytes()[n:]; seen != "" {
			t.Errorf("%s reached the upstream as %q", target, requestLine(seen))
		}
	}
	resp := rawExchange(t, ts, "GET http://a.test/x/../admin/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(resp, "\r\n\r\n/adm/admin/") {
		t.Errorf("absolute-form: got %q", short([]byte(resp), false))
	}
}
