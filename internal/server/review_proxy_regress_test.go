package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReviewProxyMethodsAndBodies: traffic the smuggling fixes must leave
// as it was. WebDAV and custom methods reach the upstream as they are,
// and a GET or DELETE with a body (search APIs) reaches it with its body,
// short (upstreamTransport) or long (http.Transport), on HTTP/1.1 and
// HTTP/2.
func TestReviewProxyMethodsAndBodies(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.RequestURI, len(b))
	}))
	ts := proxyServer(t, up.addr)
	long := strings.Repeat("q", bodyBufferSize+7)
	for _, tc := range []struct{ method, body string }{
		{"PROPFIND", "<propfind/>"}, {"MKCOL", ""}, {"PATCH", "{}"}, {"M-SEARCH", ""}, {"X_CUSTOM!", "z"},
		{"GET", `{"query":{}}`}, {"GET", long}, {"DELETE", "abc"}, {"GET", ""},
	} {
		for _, h2 := range []bool{false, true} {
			code, body, err := fetchBody(t.Context(), ts.client(t, h2), tc.method, "https://a.test/s?a=b", tc.body)
			want := fmt.Sprintf("%s /s?a=b %d", tc.method, len(tc.body))
			if code != 200 || body != want {
				t.Errorf("%s with %d bytes (HTTP/2 %v): %d %q %v, want %q", tc.method, len(tc.body), h2, code, body, err, want)
			}
		}
	}
}

// TestReviewProxyWebSocketKeepAliveUpgrade: browsers (Firefox) send
// "Connection: keep-alive, Upgrade"; the upgrade still goes through.
func TestReviewProxyWebSocketKeepAliveUpgrade(t *testing.T) {
	up := h2cUpstream(t)
	resp, tunneled, err := upgradeThrough(t, proxyServer(t, up.addr), "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("websocket upgrade: %v %v, want 101", resp, err)
	}
	if tunneled != "tunneled: hello" {
		t.Errorf("through the tunnel: %q", tunneled)
	}
}
