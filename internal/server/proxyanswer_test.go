package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTP2SlowUpstreamNotReset: an upstream slower to answer than the
// send timeout gets its answer to an HTTP/2 client. The stream's write
// timer used to fire while nothing was being written and reset the
// stream (curl: INTERNAL_ERROR; the log: a client error 408), where
// HTTP/1.1 got the answer. The send timeout is for a client that takes
// nothing, not for an upstream's thinking.
func TestHTTP2SlowUpstreamNotReset(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(900 * time.Millisecond)
		io.WriteString(w, "late answer")
	}))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{SendTimeout: 300 * time.Millisecond,
		Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	for _, h2 := range []bool{true, false} {
		resp, body := get(t, ts.client(t, h2), "https://a.test/slow")
		if resp.StatusCode != 200 || body != "late answer" {
			t.Errorf("HTTP/2 %v: %d %q, want 200 and the late answer", h2, resp.StatusCode, body)
		}
	}
}

// TestHTTP2EventGapsNotReset: an event stream relayed over HTTP/2 with a
// gap between events longer than the send timeout arrives whole: the
// stream's write timer waits with the handler between events.
func TestHTTP2EventGapsNotReset(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				time.Sleep(700 * time.Millisecond)
			}
			io.WriteString(w, "data: event\n\n")
			w.(http.Flusher).Flush()
		}
	}))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{SendTimeout: 300 * time.Millisecond,
		Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	resp, body := get(t, ts.client(t, true), "https://a.test/events")
	if resp.StatusCode != 200 || strings.Count(body, "data: event") != 3 {
		t.Errorf("%d %q, want 200 and 3 events", resp.StatusCode, body)
	}
}

// TestProxyAnswerAsUpstreamWrote: what an upstream answers reaches the
// client as written, on HTTP/1.1 and HTTP/2, where tlspilot used to
// change it: its own Referrer-Policy was replaced by the site's default
// (a site's configured header still wins; X-Content-Type-Options stays
// nosniff, its only meaningful value), an answer without Content-Type got one guessed from its body
// (JavaScript became text/plain, which nosniff then blocks), and a 204
// kept a Content-Length that HTTP/2 clients refuse.
func TestProxyAnswerAsUpstreamWrote(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		switch r.URL.Path {
		case "/own-policy":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		case "/script":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\nconsole.log('script');\n\n")
		case "/nocontent":
			io.WriteString(w, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
		default:
			io.WriteString(w, okAnswer)
		}
		return true
	}))
	c := newTestCert(t, "a.test", "b.test")
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()},
		{Names: []string{"b.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source(),
			Headers: map[string]string{"Referrer-Policy": "same-origin"}},
	}}, c)
	for _, h2 := range []bool{false, true} {
		cl := ts.client(t, h2)
		resp, _ := get(t, cl, "https://a.test/own-policy")
		if got := resp.Header.Values("Referrer-Policy"); len(got) != 1 || got[0] != "no-referrer" {
			t.Errorf("h2 %v: the upstream's Referrer-Policy: no-referrer reached the client as %q", h2, got)
		}
		if got := resp.Header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
			t.Errorf("h2 %v: X-Content-Type-Options %q, want one nosniff", h2, got)
		}
		resp, _ = get(t, cl, "https://a.test/")
		if resp.Header.Get("Referrer-Policy") != "strict-origin-when-cross-origin" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("h2 %v: an answer without them lacks the default headers: %v", h2, resp.Header)
		}
		resp, _ = get(t, cl, "https://b.test/own-policy")
		if got := resp.Header.Values("Referrer-Policy"); len(got) != 1 || got[0] != "same-origin" {
			t.Errorf("h2 %v: the site's configured Referrer-Policy gave way to the upstream's: %q", h2, got)
		}
		resp, body := get(t, cl, "https://a.test/script")
		if ct, ok := resp.Header["Content-Type"]; ok || !strings.Contains(body, "console.log") {
			t.Errorf("h2 %v: an answer without Content-Type got %q (body %q); want none, as nginx", h2, ct, body)
		}
		resp, _ = get(t, cl, "https://a.test/nocontent")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Content-Length") != "" {
			t.Errorf("h2 %v: %d with Content-Length %q, want 204 without", h2, resp.StatusCode, resp.Header.Get("Content-Length"))
		}
	}
}

// TestNoInterimAnswerToHTTP10: an HTTP/1.0 client gets the final answer
// alone, not the 103 the upstream sent before it (RFC 9110 §15.2: a
// server must not send a 1xx to an HTTP/1.0 client).
func TestNoInterimAnswerToHTTP10(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+okAnswer)
		return true
	}))
	ts := proxyServer(t, up.addr)
	conn, err := dialTLS(ts, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /early HTTP/1.0\r\nHost: a.test\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.0 200") && !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("an HTTP/1.0 client's first line %q (%v), want the 200", line, err)
	}
	// HTTP/1.1 clients still get it: TestUpstreamInterimResponses.
}

// TestFailoverWithBody: with several upstreams, a request with a body to
// one that refuses the connection goes to the next, as nginx's
// proxy_next_upstream error does (nothing was sent), instead of failing
// with 502; the dead upstream is logged once while it is out of rotation.
func TestFailoverWithBody(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	log := &syncBuffer{}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Logger: slog.New(slog.NewTextHandler(log, nil)), Sites: []Site{{Names: []string{"a.test"},
		Proxy: []string{"http://" + closedAddr(t), "http://" + up.addr}, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	for i := range 6 {
		code, body, err := fetchBody(t.Context(), cl, http.MethodPost, "https://a.test/echo", "a=b")
		if err != nil || code != 200 || body != "a=b" {
			t.Errorf("POST %d: %d %q %v, want 200 and the body echoed", i, code, body, err)
		}
	}
	if n := strings.Count(log.String(), "upstream unreachable"); n != 1 {
		t.Errorf("%d log lines on the unreachable upstream, want 1:\n%s", n, log.String())
	}
}

// dialTLS connects to ts's HTTPS listener for serverName, offering
// HTTP/1.1 only.
func dialTLS(ts *testServer, serverName string) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.httpsAddr,
		&tls.Config{ServerName: serverName, RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
}
