package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream is an upstream written byte by byte: serve gets each
// accepted connection and may do anything with it. accepted counts the
// connections, open those whose serve has not returned; serve returns
// when it is done with a connection, which is then closed.
type rawUpstream struct {
	addr     string
	accepted atomic.Int32
	open     atomic.Int32
	done     chan struct{} // closed at cleanup: a serve that waits must stop
}

// startRawUpstream listens on loopback with lc (nil: the defaults).
func startRawUpstream(t *testing.T, lc *net.ListenConfig, serve func(c net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{addr: l.Addr().String(), done: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{} // nil once the test is over
	t.Cleanup(func() {
		close(u.done)
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if conns == nil {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			mu.Unlock()
			u.accepted.Add(1)
			u.open.Add(1)
			wg.Go(func() {
				defer u.open.Add(-1)
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return u
}

// answering is a serve function that reads requests (and their bodies)
// and lets answer write each raw answer; i is the request's index on its
// connection (0 for the first). answer returns false to end the
// connection.
func answering(answer func(r *http.Request, i int, c net.Conn) bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			if !answer(r, i, c) {
				return
			}
		}
	}
}

// waitClosed waits until the upstream has seen all but keep of its
// connections closed; the 10 s bound only turns a hang into a failure.
func (u *rawUpstream) waitClosed(t *testing.T, keep int32, what string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if u.open.Load() <= keep {
			return
		}
	}
	t.Errorf("%s: %d upstream connections still open, want at most %d", what, u.open.Load(), keep)
}

// proxyServer starts a server whose one site proxies to addr.
func proxyServer(t *testing.T, addr string) *testServer {
	t.Helper()
	c := newTestCert(t, "a.test")
	return startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + addr}, Cert: c.source()}}}, c)
}

// fetchBody does method on url with body ("": none) and returns the
// status, the body and the first error.
func fetchBody(ctx context.Context, cl *http.Client, method, url, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestUpstreamClosedWhileIdle: a pooled connection the upstream closed
// while it was idle is noticed before use, so even a request that may not
// be sent twice (a POST) gets through.
func TestUpstreamClosedWhileIdle(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	cl := proxyServer(t, up.addr).client(t, false)
	get(t, cl, "https://a.test/")
	up.closeIdle(t)
	time.Sleep(50 * time.Millisecond) // the FIN reaches the proxy's socket
	resp, err := cl.Post("https://a.test/", "text/plain", strings.NewReader("form"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST after the upstream closed the idle connection: %d, want 200", resp.StatusCode)
	}
	if n := up.connCount(); n != 2 {
		t.Errorf("upstream saw %d connections, want 2", n)
	}
}

// TestUpstreamDiesBeforeAnswer: an upstream that takes a request on a
// reused connection and closes it without answering. A GET is sent again
// on a new connection; a POST is not (the upstream may have acted on it)
// and gets 502, as with net/http's Transport.
func TestUpstreamDiesBeforeAnswer(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(_ *http.Request, i int, w net.Conn) bool {
		if i > 0 {
			return false
		}
		io.WriteString(w, okAnswer)
		return true
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	for i := range 5 {
		if resp, body := get(t, cl, "https://a.test/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: %d %q, want 200 ok", i, resp.StatusCode, body)
		}
	}
	resp, err := cl.Post("https://a.test/", "text/plain", strings.NewReader("form"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST on a connection that died unanswered: %d, want 502", resp.StatusCode)
	}
}

// TestUpstreamConnectionReuse: a connection is reused only after an
// answer that ends cleanly: not after "Connection: close", a body
// delimited by the connection's end, a body the client left unread, or
// bytes the upstream sent beyond its answer.
func TestUpstreamConnectionReuse(t *testing.T) {
	answers := map[string]string{
		"/keep":     okAnswer,
		"/close":    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"/eof":      "HTTP/1.0 200 OK\r\n\r\nok",
		"/extra":    okAnswer + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno",
		"/chunked":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\nX-Trailer: t\r\n\r\n",
		"/nobody":   "HTTP/1.1 204 No Content\r\n\r\n",
		"/notfound": "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nok",
	}
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		io.WriteString(w, answers[r.URL.Path])
		return r.URL.Path != "/close" && r.URL.Path != "/eof"
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	for _, tc := range []struct {
		path    string
		status  int
		reused  bool // the next request finds the connection in the pool
		trailer string
	}{
		{"/keep", 200, true, ""},
		{"/close", 200, false, ""},
		{"/eof", 200, false, ""},
		{"/chunked", 200, true, "t"},
		{"/nobody", 204, true, ""},
		{"/notfound", 404, true, ""},
		{"/extra", 200, false, ""},
	} {
		get(t, cl, "https://a.test/keep") // one idle connection in the pool
		before := up.accepted.Load()
		resp, body := get(t, cl, "https://a.test"+tc.path)
		want := "ok"
		if tc.status == 204 {
			want = ""
		}
		if resp.StatusCode != tc.status || body != want || resp.Trailer.Get("X-Trailer") != tc.trailer {
			t.Errorf("%s: %d %q trailer %q, want %d %q %q", tc.path, resp.StatusCode, body, resp.Trailer.Get("X-Trailer"), tc.status, want, tc.trailer)
		}
		get(t, cl, "https://a.test/keep")
		if reused := up.accepted.Load() == before; reused != tc.reused {
			t.Errorf("%s: connection reused %v, want %v", tc.path, reused, tc.reused)
		}
	}
}

// TestUpstreamInterimResponses: 103 Early Hints reach the client; the
// upstream's 100 Continue does not (the client's body was read already).
func TestUpstreamInterimResponses(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+okAnswer)
		return true
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	var got []int
	var link string
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			link = h.Get("Link")
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://a.test/", strings.NewReader("form"))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("answer %d %q, want 200 ok", resp.StatusCode, body)
	}
	// ReverseProxy clears the header map after passing a 1xx on; the
	// site's headers must still be on the final answer.
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
		t.Errorf("the final answer after a 103 lost the site's headers: %v", resp.Header)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints || link != "</a.css>; rel=preload" {
		t.Errorf("interim answers %v (Link %q), want one 103 with the Link", got, link)
	}
}

// TestUpstreamClientGone: a client that gives up while the upstream
// works ends the upstream exchange at once; the connection is not reused.
func TestUpstreamClientGone(t *testing.T) {
	canceled := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "ok")
			return
		}
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://a.test/slow", nil)
	if resp, err := cl.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the slow request answered %d", resp.StatusCode)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's request went on after the client left")
	}
	if resp, body := get(t, cl, "https://a.test/"); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("next request: %d %q", resp.StatusCode, body)
	}
}

// TestUpstreamConcurrent: many clients at once share a bounded set of
// upstream connections, each answer going to its own request.
func TestUpstreamConcurrent(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				path := "/" + strings.Repeat("x", g) + "/" + strings.Repeat("y", i)
				if resp, body := get(t, cl, "https://a.test"+path); resp.StatusCode != 200 || body != path {
					t.Errorf("%s: %d %q", path, resp.StatusCode, body)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := up.connCount(); n > 16 {
		t.Errorf("%d upstream connections for 16 clients", n)
	}
}

// closeIdle waits until the upstream has an idle keep-alive connection
// (net/http marks it idle only after the answer is out) and closes every
// idle one.
func (u *testUpstream) closeIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		u.mu.Lock()
		n := len(u.idle)
		for c := range u.idle {
			c.Close()
		}
		u.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the upstream has no idle connection")
		}
	}
}

// TestUpstreamPrunesClosedIdle: a pooled connection the upstream closes
// is closed on our side too at the next check, not kept half-closed
// until the idle timeout.
func TestUpstreamPrunesClosedIdle(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(_ *http.Request, _ int, w net.Conn) bool {
		io.WriteString(w, okAnswer)
		return false // keep-alive promised, then closed
	}))
	tr := newUpstreamTransport(newTransport())
	tr.pruneEvery = time.Hour // the test runs prune itself
	t.Cleanup(tr.Close)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+up.addr+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	idle := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.idle[up.addr])
	}
	if idle() != 1 {
		t.Fatalf("%d idle connections after a keep-alive answer, want 1", idle())
	}
	for deadline := time.Now().Add(5 * time.Second); idle() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection the upstream closed is still pooled")
		}
		tr.prune()
	}
}

// TestUpstreamStreaming: an answer the upstream writes piece by piece
// (server-sent events) reaches the client piece by piece: the client has
// each event before the upstream writes the next, over HTTP/1 and HTTP/2.
func TestUpstreamStreaming(t *testing.T) {
	got := make(chan string)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-got: // the client read it
			case <-time.After(10 * time.Second):
				return
			}
		}
	}))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	for _, h2 := range []bool{false, true} {
		resp, err := ts.client(t, h2).Get("https://a.test/events")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			line, err := br.ReadString('\n')
			if want := fmt.Sprintf("data: %d\n", i); line != want || err != nil {
				t.Fatalf("HTTP/2 %v: event %d: %q %v, want %q", h2, i, line, err, want)
			}
			br.ReadString('\n') // the blank line
			got <- line
		}
		resp.Body.Close()
	}
}
