package server

import (
	"net/http"
	"net/url"
	"testing"
)

// TestReviewCleanEscaped: a path with a dot segment is sent as the path
// it was routed on (cleanPath of it decoded), but the segments left keep
// the client's encoding: an encoded slash inside a name (GitLab's
// "group%2Fproject", S3 keys, Vault paths) stays one. The dot segments
// fix sent "/a/../g%2Fp" as "/g/p", another resource to the upstream.
func TestReviewCleanEscaped(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/a/../g%2Fp", "/g%2Fp"},
		{"/api/./projects/g%2fp/files/a%2Fb%2Fc", "/api/projects/g%2fp/files/a%2Fb%2Fc"},
		{"/g%2Fp/..", "/g"},
		{"/g%2Fp/%2e%2e/", "/g/"},
		{"/admin/..%2fx", "/x"},
		{"/admin/x%2F..", "/admin"},
		{"/x/.%2e/.%2e/secret", "/secret"},
		{"%2F..%2Fx%2Fy", "/x%2Fy"},
		{"/a//b/../c%2F%2Fd", "/a/c%2Fd"},
		{"/a/./b/", "/a/b/"},
		{"/a/b/.", "/a/b"},
		{"/..", "/"},
		{"/a/..%2F", "/"},
		{"/a%20b/./c%3Fd", "/a%20b/c%3Fd"},
	} {
		got := cleanEscaped(tc.in)
		if got != tc.want {
			t.Errorf("cleanEscaped(%q) = %q, want %q", tc.in, got, tc.want)
		}
		dec, _ := url.PathUnescape(tc.in)
		gdec, _ := url.PathUnescape(got)
		if gdec != cleanPath(dec) {
			t.Errorf("cleanEscaped(%q) = %q: decoded %q, but routed on %q", tc.in, got, gdec, cleanPath(dec))
		}
	}
}

// TestReviewProxyDotSegmentsKeepEncoding: end to end, on both protocols.
func TestReviewProxyDotSegmentsKeepEncoding(t *testing.T) {
	ts, _ := reviewPathServer(t)
	for _, tc := range []struct{ path, want string }{
		{"/a/../g%2Fp/x", "/app/g%2Fp/x"},
		{"/admin/./g%2fp?q=%2F", "/adm/admin/g%2fp?q=%2F"},
		{"/x/%2e%2e/caf%C3%A9/a%2Fb", "/app/caf%C3%A9/a%2Fb"},
		{"/x/../../secret", "/app/secret"},
	} {
		for _, h2 := range []bool{false, true} {
			code, body, err := fetchBody(t.Context(), ts.client(t, h2), http.MethodGet, "https://a.test"+tc.path, "")
			if code != 200 || body != tc.want {
				t.Errorf("%s (HTTP/2 %v): upstream got %q (%d %v), want %q", tc.path, h2, body, code, err, tc.want)
			}
		}
	}
}
