package server

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestTrialProxyRequestLineInjection: what an HTTP/2 client puts in
// :method or in the query of :path becomes part of the HTTP/1.1
// request line sent upstream, and net/http's HTTP/2 server checks
// neither for spaces (its HTTP/1 server refuses both, and http.Transport
// refuses a bad method, but Request.Write, which upstreamTransport uses,
// writes them as they are). ":method: GET /admin/secret HTTP/1.1\tX:"
// with ":path: /public" went up as "GET /admin/secret HTTP/1.1\tX:
// /public HTTP/1.1", routed as /public: a request line that names
// another path than the one routes and require_paths matched. Such a
// request is answered 400 and reaches no upstream; a valid method in
// lower case still passes.
func TestTrialProxyRequestLineInjection(t *testing.T) {
	up := startRecordingUpstream(t, nil)
	ts := proxyServer(t, up.addr)
	hc := (&hostile{testServer: ts}).dialH2(t)
	status := ""
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { // one for the connection: HPACK has state
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for i, tc := range []struct{ method, path, want string }{
		{"GET /admin/secret HTTP/1.1\tX:", "/public", "400"},
		{"GET /admin", "/public", "400"},
		{"G(E)T", "/public", "400"},
		{"GET", "/public?x /admin/secret HTTP/1.1", "400"},
		{"POST", "/public?a=1 b", "400"},
		{"get", "/public?a=%20b", "200"},
	} {
		id := uint32(2*i + 1)
		n := len(up.bytes())
		hc.buf.Reset()
		for _, f := range [][2]string{{":method", tc.method}, {":scheme", "https"}, {":authority", "a.test"}, {":path", tc.path}} {
			hc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := hc.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hc.buf.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
			t.Fatal(err)
		}
		status = ""
		hc.until(5*time.Second, func(fr http2.Frame) bool {
			switch fr := fr.(type) {
			case *http2.HeadersFrame:
				dec.Write(fr.HeaderBlockFragment())
				return fr.StreamID == id && fr.StreamEnded()
			case *http2.DataFrame:
				return fr.StreamID == id && fr.StreamEnded()
			case *http2.RSTStreamFrame:
				return fr.StreamID == id
			}
			return false
		})
		seen := up.bytes()[n:]
		if status != tc.want {
			t.Errorf(":method %q :path %q: status %q, want %s; upstream got %q", tc.method, tc.path, status, tc.want, seen)
		}
		if tc.want != "200" && seen != "" {
			t.Errorf(":method %q :path %q: upstream got %q", tc.method, tc.path, seen)
		}
		if tc.want == "200" && !strings.HasPrefix(seen, "get /public?a=%20b HTTP/1.1\r\n") {
			t.Errorf(":method %q :path %q: upstream got %q", tc.method, tc.path, seen)
		}
	}
}
