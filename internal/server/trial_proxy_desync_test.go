package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// bodyIgnoringUpstream answers each request with its path and never
// reads a body: as the servers of the "CL.0" desync do on endpoints
// that expect none (static files, redirects), the bytes of a body are
// taken for the start of the next request on the connection.
func bodyIgnoringUpstream(t *testing.T) *rawUpstream {
	return startRawUpstream(t, nil, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			r.Body = nil // its bytes stay in br, for the next ReadRequest
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
		}
	})
}

// TestTrialProxyBodyOnBodilessMethod: a body on a GET (or HEAD, DELETE,
// OPTIONS, TRACE: methods whose content has no meaning, RFC 9110 §9.3)
// is passed on, but an upstream may ignore it; its connection must then
// not serve another client. A GET whose body is the start of a request
// ("GET /smuggled HTTP/1.1\r\nX-Ignore: ") left that prefix on the
// pooled connection; the next client's request completed it and got the
// answer to /smuggled, made with that client's headers (its cookies). A
// connection that carried such a body is closed after its answer, on
// both transports.
func TestTrialProxyBodyOnBodilessMethod(t *testing.T) {
	const prefix = "GET /smuggled HTTP/1.1\r\nX-Ignore: "
	for _, tc := range []struct{ method, body string }{
		{http.MethodGet, prefix},
		{http.MethodDelete, prefix},
		{http.MethodOptions, prefix},
		{http.MethodGet, "GET /smuggled HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", bodyBufferSize) + "\r\nX-Ignore: "}, // http.Transport's path
	} {
		t.Run(fmt.Sprintf("%s %d", tc.method, len(tc.body)), func(t *testing.T) {
			up := bodyIgnoringUpstream(t)
			ts := proxyServer(t, up.addr)
			attacker, victim := ts.client(t, false), ts.client(t, true)
			fetchBody(t.Context(), attacker, tc.method, "https://a.test/first", tc.body)
			for i := range 3 {
				if code, body, err := fetchBody(t.Context(), victim, http.MethodGet, "https://a.test/victim", ""); body != "/victim" {
					t.Errorf("victim's request %d: %d %q %v, want its own answer", i+1, code, body, err)
				}
			}
		})
	}
}
