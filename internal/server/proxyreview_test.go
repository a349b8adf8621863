package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestSlowReaderHTTP2Proxied: TestSlowReaderHTTP2 for proxied answers,
// sent whole or streamed with flushes (the stream's write timer is
// paused between flushes): a stream whose window the client never opens
// is reset after the send timeout.
func TestSlowReaderHTTP2Proxied(t *testing.T) {
	for _, mode := range []string{"plain", "flushsmall", "flushbig", "sse"} {
		t.Run(mode, func(t *testing.T) {
			var upDone atomic.Int32
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer upDone.Add(1)
				chunk := strings.Repeat("x", 32<<10)
				switch mode {
				case "plain":
					w.Header().Set("Content-Length", "16777216")
					for range 512 {
						if _, err := io.WriteString(w, chunk); err != nil {
							return
						}
					}
				case "flushsmall", "sse":
					if mode == "sse" {
						w.Header().Set("Content-Type", "text/event-stream")
					}
					for range 100000 {
						if _, err := io.WriteString(w, "data: event 0123456789\n\n"); err != nil {
							return
						}
						w.(http.Flusher).Flush()
						time.Sleep(time.Millisecond)
					}
				case "flushbig":
					for range 512 {
						if _, err := io.WriteString(w, chunk); err != nil {
							return
						}
						w.(http.Flusher).Flush()
					}
				}
			})
			h := startHostile(t, Options{SendTimeout: time.Second}, up)
			hc := h.dialH2(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			hc.request(t, 1, "GET", "/up/x", true)
			start := time.Now()
			if !hc.until(10*time.Second, func(f http2.Frame) bool {
				r, ok := f.(*http2.RSTStreamFrame)
				return ok && r.StreamID == 1
			}) {
				t.Errorf("%s: a proxied stream with a closed window was not reset in 10s", mode)
			} else {
				t.Logf("%s: reset after %v", mode, time.Since(start))
			}
		})
	}
}

// TestServeErrorKeepsRemovedHeaders: a header a handler removes on
// purpose stays removed: http.ServeContent drops a site's Cache-Control
// from its 416, which a shared cache would otherwise keep for a year
// (found by review).
func TestServeErrorKeepsRemovedHeaders(t *testing.T) {
	c := newTestCert(t, "a.test")
	root := staticSite(t)
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source(),
		Headers: map[string]string{"Cache-Control": "public, max-age=31536000, immutable"}}}}, c)
	for _, h2 := range []bool{false, true} {
		resp, body := get(t, ts.client(t, h2), "https://a.test/hello.txt", "Range", "bytes=100000-")
		t.Logf("h2 %v: %d %q Cache-Control=%q", h2, resp.StatusCode, body, resp.Header.Values("Cache-Control"))
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && resp.Header.Get("Cache-Control") != "" {
			t.Errorf("h2 %v: 416 carries Cache-Control %q that ServeContent removed", h2, resp.Header.Get("Cache-Control"))
		}
	}
}

// TestUpgradeRequestOneReferrerPolicy: a request asking for an upgrade
// that the upstream answers with 200 and its own Referrer-Policy gets
// that one alone, not the site's default beside it (found by review).
func TestUpgradeRequestOneReferrerPolicy(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nReferrer-Policy: no-referrer\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		return true
	}))
	ts := proxyServer(t, up.addr)
	conn, err := dialTLS(ts, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Values("Referrer-Policy"); len(got) != 1 {
		t.Errorf("Referrer-Policy %q, want one (the upstream's)", strings.Join(got, " | "))
	}
}

// TestChunkedCloseAfterInterim: the connection of a chunked HTTP/1
// request closes after the answer (RFC 9112 §6.1, see accessLog.wrap)
// also when the upstream sent a 1xx first, after which ReverseProxy
// clears the header map (found by review).
func TestChunkedCloseAfterInterim(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		if r.URL.Path == "/early" {
			io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
		}
		io.WriteString(w, okAnswer)
		return true
	}))
	ts := proxyServer(t, up.addr)
	for _, path := range []string{"/plain", "/early"} {
		conn, err := dialTLS(ts, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d Close=%v Connection=%q", path, resp.StatusCode, resp.Close, resp.Header.Get("Connection"))
		if !resp.Close {
			t.Errorf("%s: chunked request's connection kept open", path)
		}
		conn.Close()
	}
}

// TestHTTP2UploadAfterEarlyAnswer: over HTTP/2, an upload the upstream
// reads while its answer has begun (full duplex, Content-Length known,
// so ReverseProxy does not flush) is progress on the stream: the client
// keeps sending for longer than the send timeout and gets the whole
// answer (the paused write timer stopped the body from pushing it;
// found by review).
func TestHTTP2UploadAfterEarlyAnswer(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		n, err := io.Copy(io.Discard, r.Body)
		t.Logf("upstream read %d %v", n, err)
		io.WriteString(w, "world")
	}))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{SendTimeout: time.Second, BodyTimeout: 5 * time.Second,
		Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("a", bodyBufferSize+1)))
		for range 15 {
			time.Sleep(200 * time.Millisecond)
			if _, err := pw.Write([]byte("b")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "https://a.test/up", pr)
	resp, err := ts.client(t, true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("%d %q %v", resp.StatusCode, b, err)
	if string(b) != "helloworld" || err != nil {
		t.Errorf("an upload still arriving was cut: %q %v", b, err)
	}
}
