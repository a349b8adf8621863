//go:build linux

// (Linux only: smallWindow sets socket options by number.)

package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Adversarial tests of upstreamTransport: upstreams that break HTTP/1.1
// on purpose or by accident, compared with what net/http's Transport
// (still used for bodies over bodyBufferSize, the control cases below)
// does with them.

// bigBody goes to http.Transport (over bodyBufferSize); smallBody to
// upstreamTransport.
var (
	bigBody   = strings.Repeat("b", bodyBufferSize+1000)
	smallBody = strings.Repeat("s", bodyBufferSize-5000)
)

// smuggled is a complete answer hidden where no bytes belong.
const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned"

// TestHostileUpstreamBytesAfterEmptyBody: an answer that has no body by
// the rules (to HEAD, 204, 304, Content-Length: 0) followed by bytes
// the upstream should not have sent. They must not be taken as the
// answer to the next request on the connection (a desync that would
// serve one client's poisoned answer to another): net/http's Transport
// sees unread bytes on an idle connection and closes it.
func TestHostileUpstreamBytesAfterEmptyBody(t *testing.T) {
	for _, tc := range []struct {
		name, method, answer string
	}{
		{"HEAD with a body", http.MethodHead, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled)},
		{"204 with a body", http.MethodGet, "HTTP/1.1 204 No Content\r\n\r\n" + smuggled},
		{"304 with a body", http.MethodGet, "HTTP/1.1 304 Not Modified\r\n\r\n" + smuggled},
		{"Content-Length 0 and more", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + smuggled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
				if r.URL.Path == "/first" {
					io.WriteString(c, tc.answer)
				} else {
					io.WriteString(c, okAnswer)
				}
				return true
			}))
			cl := proxyServer(t, up.addr).client(t, false)
			ctx := t.Context()
			if tc.method != http.MethodHead {
				// Control: the same answers through http.Transport.
				fetchBody(ctx, cl, http.MethodPost, "https://a.test/first", bigBody)
				// (Its idle connection's reader notices the bytes; under
				// -race it is sometimes too late, so this is only logged.)
				code, body, err := fetchBody(ctx, cl, http.MethodPost, "https://a.test/next", bigBody)
				t.Logf("control (http.Transport): next answer %d %q %v", code, body, err)
			}
			fetchBody(ctx, cl, tc.method, "https://a.test/first", "")
			for i := range 3 {
				if code, body, err := fetchBody(ctx, cl, http.MethodGet, "https://a.test/next", ""); code != 200 || body != "ok" {
					t.Errorf("request %d after the answer: %d %q %v, want 200 \"ok\"", i+1, code, body, err)
				}
			}
		})
	}
}

// TestHostileUpstreamHugeHead: an upstream that sends an endless response
// head must be cut off, as http.Transport does after 10 MB
// (MaxResponseHeaderBytes' default); http.ReadResponse alone reads and
// keeps every byte until the 60 s header timeout.
func TestHostileUpstreamHugeHead(t *testing.T) {
	const lines, lineLen = 24 << 10, 1 << 10 // 24 MiB of header lines
	var written atomic.Int64
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		line := "X-Pad: " + strings.Repeat("a", lineLen-9) + "\r\n"
		n, _ := io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		written.Store(int64(n))
		for range lines {
			n, err := io.WriteString(c, line)
			written.Add(int64(n))
			if err != nil {
				return false
			}
		}
		io.WriteString(c, okAnswer[len("HTTP/1.1 200 OK\r\n"):])
		return false
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	cl.Transport.(*http.Transport).MaxResponseHeaderBytes = 64 << 20 // let the test see what the proxy forwards
	ctx := t.Context()
	if code, _, err := fetchBody(ctx, cl, http.MethodPost, "https://a.test/", bigBody); code != http.StatusBadGateway {
		t.Errorf("control (http.Transport): %d %v, want 502", code, err)
	}
	code, _, err := fetchBody(ctx, cl, http.MethodGet, "https://a.test/", "")
	if code != http.StatusBadGateway {
		t.Errorf("GET answered with a %d MiB response head: %d %v (upstream wrote %d MiB), want 502",
			lines*lineLen>>20, code, err, written.Load()>>20)
	}
}

// TestHostileUpstreamSwitchUnasked: an upstream answering 101 to a
// request that asked for no upgrade must not get the client's
// connection as a raw tunnel. With http.Transport the 101 has no
// writable body and ReverseProxy answers 502; if the proxy hands the
// connection over, the client's next requests on it reach the upstream
// untouched (no X-Forwarded-For rewrite, no identity headers, no routing).
func TestHostileUpstreamSwitchUnasked(t *testing.T) {
	tunneled := make(chan string, 4)
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		if r.URL.Path == "/switch" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
			return true
		}
		tunneled <- r.URL.Path + " X-Forwarded-For=" + r.Header.Get("X-Forwarded-For")
		io.WriteString(c, okAnswer)
		return true
	}))
	ts := proxyServer(t, up.addr)
	cl := ts.client(t, false)
	if code, _, err := fetchBody(t.Context(), cl, http.MethodPost, "https://a.test/switch", bigBody); code != http.StatusBadGateway {
		t.Errorf("control (http.Transport): %d %v, want 502", code, err)
	}
	conn, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /switch HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusBadGateway {
		return
	}
	t.Errorf("GET without Upgrade answered 101 by the upstream: client got %d, want 502", resp.StatusCode)
	io.WriteString(conn, "GET /admin HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.6.6.6\r\n\r\n")
	select {
	case got := <-tunneled:
		t.Errorf("the client's next request went through the tunnel untouched: upstream got %s", got)
	case <-time.After(2 * time.Second):
	}
}

// TestHostileUpstreamSwitchOther: a 101 to another protocol than the
// one asked for (or to a request that asked for none) gets 502 from
// ReverseProxy, which does not close the response body: the transport
// must not hand out a connection nobody closes. (http.Transport leaks it
// the same way, until the garbage collector finds it.)
func TestHostileUpstreamSwitchOther(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
		return true // then read until the proxy closes
	}))
	ts := proxyServer(t, up.addr)
	cl := ts.client(t, false)
	if code, _, err := fetchBody(t.Context(), cl, http.MethodGet, "https://a.test/", ""); code != http.StatusBadGateway {
		t.Errorf("GET answered 101 h2c: %d %v, want 502", code, err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://a.test/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if resp, err := cl.Do(req); err != nil {
		t.Errorf("websocket upgrade answered 101 h2c: %v, want 502", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("websocket upgrade answered 101 h2c: %d, want 502", resp.StatusCode)
	}
	up.waitClosed(t, 0, "after two refused 101 answers")
}

// smallWindow is a ListenConfig whose connections have a tiny receive
// buffer and a small segment size (on loopback the sender's buffer
// grows with the segment size, 64 KiB there; 536 bytes is what a WAN
// path may have): a request body the upstream does not read fills the
// buffers after some 20 KiB.
var smallWindow = &net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
	var e1, e2 error
	err := rc.Control(func(fd uintptr) {
		e1 = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		e2 = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
	})
	return errors.Join(err, e1, e2)
}}

// TestHostileUpstreamAnswersEarly: an upstream that answers (413 here)
// after the request head, without reading the body, and keeps the
// connection. http.Transport reads the answer while it writes the body,
// so the client gets the 413 whatever the windows; upstreamTransport
// writes the whole body before it reads, which blocks once the socket
// buffers are full: the request hangs until the client gives up. (An
// upstream that closes instead resets the connection, as the body is
// unread: 502 with either transport.)
func TestHostileUpstreamAnswersEarly(t *testing.T) {
	const tooLarge = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	var up *rawUpstream
	up = startRawUpstream(t, smallWindow, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, tooLarge)
		<-up.done
	})
	cl := proxyServer(t, up.addr).client(t, false)
	for _, tc := range []struct{ name, body string }{
		{"control (http.Transport)", bigBody},
		{"buffered body (upstreamTransport)", smallBody},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // a hang bound, not a speed check
		code, _, err := fetchBody(ctx, cl, http.MethodPost, "https://a.test/upload", tc.body)
		cancel()
		if code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: POST of %d bytes: %d %v, want the upstream's 413", tc.name, len(tc.body), code, err)
		}
	}
}

// TestHostileUpstreamStallAfterHead: an upstream that sends the response
// head and part of the body, then nothing: a client that leaves (an
// HTTP/1 connection closed, an HTTP/2 stream cancelled) releases the
// upstream connection.
func TestHostileUpstreamStallAfterHead(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2 %v", h2), func(t *testing.T) {
			up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
				// More than the server buffers, so the client sees the start.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("p", 16<<10))
				return true // then read: returns when the proxy closes
			}))
			ts := proxyServer(t, up.addr)
			cl := ts.client(t, h2)
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://a.test/", nil)
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "p" {
				t.Fatalf("start of the body: %q %v", buf, err)
			}
			if (resp.ProtoMajor == 2) != h2 {
				t.Fatalf("client spoke %s", resp.Proto)
			}
			cancel()
			resp.Body.Close()
			up.waitClosed(t, 0, "client gone while the upstream body stalls")
		})
	}
}

// TestHostileUpstreamMalformed: answers http.Transport also refuses end
// in a 502 (or a cut body once the head is out), and each of their
// connections is closed, none pooled. So does a flood of interim answers
// (over maxResponseHead together), which http.Transport would relay for
// as long as it lasts.
func TestHostileUpstreamMalformed(t *testing.T) {
	answers := map[string]string{
		"/garbage":   "HELLO\r\n\r\n",
		"/http09":    "<html>hi</html>\n",
		"/1xx-flood": strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </"+strings.Repeat("a", 1000)+">\r\n\r\n", 1100) + okAnswer,
		"/bad-cl":    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"/two-cl":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"/te-and-cl": "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok",
		"/huge-chunk": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"FFFFFFFFFFFFFFFFFFFF\r\nok",
		"/bad-chunk":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
		"/short":          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",
		"/close-but-open": "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"/status-999":     "HTTP/1.1 99 Odd\r\nContent-Length: 2\r\n\r\nok",
	}
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		io.WriteString(c, answers[r.URL.Path])
		// /short closes; the others keep the connection open: the proxy
		// must close it.
		return r.URL.Path != "/short" && r.URL.Path != "/http09"
	}))
	cl := proxyServer(t, up.addr).client(t, false)
	for path := range answers {
		code, body, err := fetchBody(t.Context(), cl, http.MethodGet, "https://a.test"+path, "")
		switch {
		case path == "/close-but-open":
			if code != 200 || body != "ok" || err != nil {
				t.Errorf("%s: %d %q %v, want 200 ok", path, code, body, err)
			}
		case path == "/huge-chunk" || path == "/bad-chunk" || path == "/short":
			if err == nil {
				t.Errorf("%s: %d %q, want the body cut off", path, code, body)
			}
		case code != http.StatusBadGateway:
			t.Errorf("%s: %d %q %v, want 502", path, code, body, err)
		}
	}
	up.waitClosed(t, 0, "after malformed answers")
}

// TestHostileUpstreamOddPaths: paths that are valid for the client but
// odd on the wire are written escaped, never raw.
func TestHostileUpstreamOddPaths(t *testing.T) {
	h := startHostile(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI)
	}))
	hc := h.dialH2(t)
	paths := []string{"/up/a b", "/up/a\tb", "/up/%00", "/up/a%20HTTP/1.1%0d%0aX:%20y", "/up/ä"}
	for i, p := range paths {
		hc.request(t, uint32(2*i+1), "GET", p, true)
	}
	got := map[uint32]string{}
	status := map[uint32]string{}
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {})
	ended := 0
	hc.until(10*time.Second, func(fr http2.Frame) bool {
		id := fr.Header().StreamID
		switch fr := fr.(type) {
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(fr.HeaderBlockFragment())
			for _, f := range fields {
				if f.Name == ":status" {
					status[id] = f.Value
				}
			}
			if fr.StreamEnded() {
				ended++
			}
		case *http2.DataFrame:
			got[id] += string(fr.Data())
			if fr.StreamEnded() {
				ended++
			}
		case *http2.RSTStreamFrame:
			status[id] = "reset"
			ended++
		}
		return ended == len(paths)
	})
	for i, p := range paths {
		id := uint32(2*i + 1)
		t.Logf("%q: status %s, upstream saw %q", p, status[id], got[id])
		if b := got[id]; strings.ContainsAny(b, " \t\r\n\x00") {
			t.Errorf("%q reached the upstream as %q (status %s)", p, b, status[id])
		}
	}
}

// TestHostileUpstreamPool: idle connections are closed after the idle
// timeout and by Close, and a connection that becomes idle after Close
// is not kept.
func TestHostileUpstreamPool(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		io.WriteString(c, okAnswer)
		return true
	}))
	idle := func(tr *upstreamTransport, n int) {
		t.Helper()
		var resps []*http.Response
		for range n { // n answers held at once: n connections
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+up.addr+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resps = append(resps, resp)
		}
		for _, resp := range resps {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	short := newUpstreamTransport(newTransport())
	short.idleTimeout = time.Second
	short.pruneEvery = 50 * time.Millisecond
	idle(short, 3)
	if n := up.open.Load(); n != 3 {
		t.Fatalf("%d upstream connections open, want 3 idle", n)
	}
	up.waitClosed(t, 0, "after the idle timeout")

	long := newUpstreamTransport(newTransport())
	idle(long, 3)
	long.Close()
	up.waitClosed(t, 0, "after Close")
	idle(long, 1)
	up.waitClosed(t, 0, "a connection idle after Close")
}

// TestHostileUpstreamShutdown: the server's end closes the idle upstream
// connections.
func TestHostileUpstreamShutdown(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		io.WriteString(c, okAnswer)
		return true
	}))
	c := newTestCert(t, "a.test")
	tl := listen(t)
	s, err := New(Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}},
		HTTPListener: listen(t), HTTPSListener: tl, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	ts := &testServer{Server: s, httpsAddr: tl.Addr().String(), roots: poolOf(c)}
	cl := ts.client(t, false)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { fetchBody(t.Context(), cl, http.MethodGet, "https://a.test/", "") })
	}
	wg.Wait()
	cl.Transport.(*http.Transport).CloseIdleConnections()
	if up.open.Load() == 0 {
		t.Fatal("no idle upstream connection to close")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	up.waitClosed(t, 0, "after Shutdown")
}

// TestHostileUpstreamConcurrentMixed: many clients at once, with answers
// that keep, close or break their connection and clients that leave
// mid-body, each get their own answer (run with -race), and no
// connection is left behind but the pooled ones.
func TestHostileUpstreamConcurrentMixed(t *testing.T) {
	up := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/chunked/"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(p), p)
		case strings.HasPrefix(p, "/close/"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
			return false
		case strings.HasPrefix(p, "/empty/"):
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case strings.HasPrefix(p, "/stall/"):
			// More than the server buffers, so the client sees the start.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("s", 16<<10))
			return true // the client leaves: the proxy must close
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p), p)
		}
		return true
	}))
	ts := proxyServer(t, up.addr)
	kinds := []string{"keep", "chunked", "close", "empty", "stall"}
	var wg sync.WaitGroup
	for g := range 8 {
		cl := ts.client(t, g%2 == 0)
		wg.Go(func() {
			for i := range 40 {
				kind := kinds[(g+i)%len(kinds)]
				p := fmt.Sprintf("/%s/%d/%d", kind, g, i)
				if kind == "stall" {
					ctx, cancel := context.WithCancel(t.Context())
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://a.test"+p, nil)
					if resp, err := cl.Do(req); err == nil {
						io.ReadFull(resp.Body, make([]byte, 5))
						cancel()
						resp.Body.Close()
					}
					cancel()
					continue
				}
				code, body, err := fetchBody(t.Context(), cl, http.MethodGet, "https://a.test"+p, "")
				want := p
				if kind == "empty" {
					want = ""
				}
				if err != nil || body != want {
					t.Errorf("%s: %d %q %v", p, code, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	up.waitClosed(t, 8, "after the mixed load")
}
