package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// hostile is a server with a static site (plain HTTP too) and a proxy
// route, short timeouts, and a log kept for inspection.
type hostile struct {
	*testServer
	cert     *testCert
	up       *testUpstream
	log, acc *syncBuffer
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

const bigSize = 16 << 20

func startHostile(t *testing.T, opts Options, upstream http.Handler) *hostile {
	t.Helper()
	root := staticSite(t)
	writeFile(t, filepath.Join(root, "big.bin"), strings.Repeat("x", bigSize))
	if upstream == nil {
		upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "upstream read %d %v", n, err)
		})
	}
	h := &hostile{cert: newTestCert(t, "a.test"), up: startUpstream(t, upstream), log: &syncBuffer{}, acc: &syncBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.AccessLog = slog.New(slog.NewJSONHandler(h.acc, nil))
	opts.Sites = []Site{{Names: []string{"a.test"}, Root: root, Cert: h.cert.source(),
		Routes: []Route{{Path: "/up/", Proxy: []string{"http://" + h.up.addr}}}}}
	h.testServer = startServer(t, opts, h.cert)
	return h
}

// served checks that a normal client gets a small file within 100 ms
// while the attack goes on: the best of five tries on new connections,
// so a busy machine does not fail it.
func (h *hostile) served(t *testing.T) {
	t.Helper()
	best := time.Hour
	var lastErr error
	for range 5 {
		c := h.client(t, false)
		start := time.Now()
		resp, err := c.Get("https://a.test/hello.txt")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				best = min(best, time.Since(start))
			}
		}
		lastErr = err
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
	if best > 100*time.Millisecond {
		t.Errorf("a normal client was not served within 100 ms during the attack (best of 5: %v, last error %v)", best, lastErr)
	}
}

// dialTLS opens an HTTP/1.1 TLS connection to the server.
func (h *hostile) dialTLS(t *testing.T, proto string) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.httpsAddr,
		&tls.Config{ServerName: "a.test", RootCAs: h.roots, NextProtos: []string{proto}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStalledBodyHTTP1: a POST announcing a body it never sends gets 408
// after the body timeout, and never reaches the upstream.
func TestStalledBodyHTTP1(t *testing.T) {
	h := startHostile(t, Options{BodyTimeout: time.Second}, nil)
	var conns []*tls.Conn
	for range 20 {
		c := h.dialTLS(t, "http/1.1")
		io.WriteString(c, "POST /up/x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n")
		conns = append(conns, c)
	}
	h.served(t)
	if n := h.up.connCount(); n != 0 {
		t.Errorf("%d upstream connections held by stalled bodies, want 0", n)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled POST: no response: %v", err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("stalled POST: %d, want 408", resp.StatusCode)
		}
	}
	if n := h.up.connCount(); n != 0 {
		t.Errorf("%d upstream connections dialled for bodies that never came, want 0", n)
	}
}

// h2conn is a raw HTTP/2 client connection driven frame by frame.
type h2conn struct {
	*http2.Framer
	c   *tls.Conn
	enc *hpack.Encoder
	buf bytes.Buffer
}

func (h *hostile) dialH2(t *testing.T, settings ...http2.Setting) *h2conn {
	t.Helper()
	c := h.dialTLS(t, "h2")
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	hc := &h2conn{Framer: http2.NewFramer(c, c), c: c}
	hc.enc = hpack.NewEncoder(&hc.buf)
	if err := hc.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return hc
}

// request opens stream id with the given headers; end ends the stream.
func (hc *h2conn) request(t *testing.T, id uint32, method, path string, end bool, extra ...string) {
	t.Helper()
	hc.buf.Reset()
	for _, kv := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}} {
		hc.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		hc.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	if err := hc.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hc.buf.Bytes(), EndHeaders: true, EndStream: end}); err != nil {
		t.Fatal(err)
	}
}

// until reads frames (answering pings and settings) until f returns
// true, or the deadline, or the connection ends; it reports whether f
// returned true.
func (hc *h2conn) until(d time.Duration, f func(http2.Frame) bool) bool {
	hc.c.SetReadDeadline(time.Now().Add(d))
	for {
		fr, err := hc.ReadFrame()
		if err != nil {
			return false
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				hc.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !fr.IsAck() {
				hc.WritePing(true, fr.Data)
			}
		}
		if f(fr) {
			return true
		}
	}
}

// TestStalledBodyHTTP2: streams announcing bodies they never send end
// after the body timeout, one TCP connection holds no upstream
// connection, and the connection stays usable.
func TestStalledBodyHTTP2(t *testing.T) {
	h := startHostile(t, Options{BodyTimeout: time.Second}, nil)
	hc := h.dialH2(t)
	const streams = 50
	for i := range streams {
		hc.request(t, uint32(2*i+1), "POST", "/up/x", false, "content-length", "100000")
	}
	h.served(t)
	ended := map[uint32]bool{}
	ok := hc.until(10*time.Second, func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.HeadersFrame:
			ended[f.StreamID] = true
		case *http2.RSTStreamFrame:
			ended[f.StreamID] = true
		}
		return len(ended) == streams
	})
	if !ok {
		t.Errorf("%d of %d stalled streams ended within 10 s", len(ended), streams)
	}
	if n := h.up.connCount(); n != 0 {
		t.Errorf("%d upstream connections held by one HTTP/2 connection, want 0", n)
	}
	hc.request(t, 2*streams+1, "GET", "/hello.txt", true)
	if !hc.until(5*time.Second, func(f http2.Frame) bool {
		d, ok := f.(*http2.DataFrame)
		return ok && d.StreamID == 2*streams+1 && strings.Contains(string(d.Data()), "hello")
	}) {
		t.Errorf("the connection does not serve a request after the stalled streams ended (%d ended)", len(ended))
	}
}

// smallWindowConn connects with a tiny receive buffer and never reads.
func smallWindowConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dropped reports whether the server closed c (EOF or reset) within d,
// reading at most what is left in the kernel's buffers.
func dropped(c net.Conn, d time.Duration) (bool, int64) {
	c.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()), n
}

// TestSlowReaderHTTP1: clients that ask for a large file or a large
// proxied response and never read are dropped after the send timeout,
// and the upstream's response is abandoned.
func TestSlowReaderHTTP1(t *testing.T) {
	upDone := make(chan error, 10)
	h := startHostile(t, Options{SendTimeout: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		for i := 0; i < bigSize/4096 && err == nil; i++ {
			_, err = w.Write(bytes.Repeat([]byte("u"), 4096))
		}
		upDone <- err
	}))
	var conns []net.Conn
	for _, path := range []string{"/big.bin", "/up/big"} {
		for _, plain := range []bool{true, false} {
			addr := h.httpsAddr
			if plain {
				addr = h.httpAddr
			}
			c := smallWindowConn(t, addr)
			if !plain {
				tc := tls.Client(c, &tls.Config{ServerName: "a.test", RootCAs: h.roots, NextProtos: []string{"http/1.1"}})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				c = tc
			}
			host := "a.test"
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
			conns = append(conns, c)
		}
	}
	time.Sleep(500 * time.Millisecond)
	h.served(t)
	time.Sleep(3 * time.Second) // the send timeout, with room
	for i, c := range conns {
		// The server must have given up: what is left in the kernel
		// buffers drains fast, then the connection ends.
		if ok, n := dropped(c, 5*time.Second); !ok || n >= bigSize {
			t.Errorf("slow reader %d: dropped %v after reading %d bytes", i, ok, n)
		}
	}
	for range 2 {
		select {
		case <-upDone:
		case <-time.After(10 * time.Second):
			t.Fatal("the upstream is still sending to a client that never reads")
		}
	}
}

// TestSlowReaderHTTP2: a stream whose flow-control window the client
// never opens is reset after the send timeout (a connection whose
// socket takes nothing: TestStalledSocketHTTP2).
func TestSlowReaderHTTP2(t *testing.T) {
	h := startHostile(t, Options{SendTimeout: time.Second}, nil)
	hc := h.dialH2(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	hc.request(t, 1, "GET", "/big.bin", true)
	hc.request(t, 3, "GET", "/hello.txt", true)
	h.served(t)
	if !hc.until(10*time.Second, func(f http2.Frame) bool {
		r, ok := f.(*http2.RSTStreamFrame)
		return ok && r.StreamID == 1
	}) {
		t.Error("a stream with a closed window was not reset")
	}
}

// TestStalledSocketHTTP2: an HTTP/2 client that opens every
// flow-control window and then never reads its socket is dropped after
// the send timeout: the stall is in the connection's writes, which no
// stream's deadline reaches.
func TestStalledSocketHTTP2(t *testing.T) {
	h := startHostile(t, Options{SendTimeout: time.Second}, nil)
	c := tls.Client(smallWindowConn(t, h.httpsAddr), &tls.Config{ServerName: "a.test", RootCAs: h.roots, NextProtos: []string{"h2"}})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	hc := &h2conn{Framer: http2.NewFramer(c, c), c: c}
	hc.enc = hpack.NewEncoder(&hc.buf)
	if err := hc.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := hc.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	hc.request(t, 1, "GET", "/big.bin", true)
	time.Sleep(500 * time.Millisecond)
	h.served(t)
	time.Sleep(3 * time.Second) // the send timeout, with room
	if ok, n := dropped(c, 5*time.Second); !ok || n >= bigSize {
		t.Errorf("an HTTP/2 connection whose socket takes nothing: dropped %v after reading %d bytes", ok, n)
	}
}

// TestMaxConnections: at the cap, idle keep-alive connections make room
// for new clients; with none idle, new connections are closed at once
// and counted.
func TestMaxConnections(t *testing.T) {
	h := startHostile(t, Options{MaxConnections: 10}, nil)
	for range 10 { // ten idle keep-alive connections fill the cap
		c, err := net.Dial("tcp", h.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if st := h.Stats(); st.Open != 10 || st.MaxConnections != 10 {
		t.Fatalf("stats %+v, want 10 open of 10", st)
	}
	h.served(t)
	if st := h.Stats(); st.Reclaimed == 0 || st.Open > 10 {
		t.Errorf("stats %+v: want idle connections reclaimed and at most 10 open", st)
	}
	// Connections that never send a request are not idle: once they
	// fill the cap, the next one is refused.
	var c net.Conn
	for i := 0; h.Stats().Refused == 0; i++ {
		if i == 40 {
			t.Fatalf("40 connections beyond a cap of 10 and none refused: %+v", h.Stats())
		}
		nc, err := net.Dial("tcp", h.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		c = nc
		time.Sleep(50 * time.Millisecond)
	}
	if ok, _ := dropped(c, 5*time.Second); !ok {
		t.Errorf("the connection beyond the cap was not closed (stats %+v)", h.Stats())
	}
	if st := h.Stats(); st.Refused == 0 {
		t.Errorf("stats %+v: want a refused connection counted", st)
	}
	if !strings.Contains(h.log.String(), "max_connections reached") {
		t.Errorf("no warning about the cap:\n%s", h.log.String())
	}
}

// failingListener fails its first n Accepts with EMFILE, as a process
// out of file descriptors does (fault injection).
type failingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsLogged: accept failures are counted, and logged at
// warn at most once a second.
func TestAcceptErrorsLogged(t *testing.T) {
	log := &syncBuffer{}
	c := newTestCert(t, "a.test")
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{HTTPSListener: &failingListener{Listener: tl, n: 12},
		Logger: slog.New(slog.NewTextHandler(log, nil)),
		Sites:  []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	ctx, cancel := contextWithCancel(t)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	ts := &testServer{Server: s, httpsAddr: tl.Addr().String(), roots: poolOf(c)}
	resp, body := get(t, ts.client(t, false), "https://a.test/hello.txt")
	if resp.StatusCode != 200 || body != "hello, world\n" {
		t.Fatalf("after accept errors: %d %q", resp.StatusCode, body)
	}
	if st := s.Stats(); st.AcceptErrors != 12 {
		t.Errorf("AcceptErrors = %d, want 12", st.AcceptErrors)
	}
	// net/http retries with a back-off (5 ms doubling to 1 s): the 12
	// failures take about 5 s, and the log gets at most one line a second.
	elapsed := time.Since(start)
	lines := strings.Count(log.String(), "level=WARN msg=\"accept failed; retrying\"")
	if lines < 1 || lines > int(elapsed/time.Second)+1 {
		t.Errorf("%d warnings for 12 accept errors in %v, want at most one a second:\n%s", lines, elapsed, log.String())
	}
}

// TestChunkedWithContentLength: RFC 9112 §6.1 — after a request with
// both Content-Length and Transfer-Encoding: chunked the connection is
// closed; a request pipelined behind it is not served.
func TestChunkedWithContentLength(t *testing.T) {
	h := startHostile(t, Options{}, nil)
	req := "POST /up/x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /hello.txt HTTP/1.1\r\nHost: a.test\r\n\r\n"
	for _, tlsConn := range []bool{false, true} {
		var c net.Conn
		if tlsConn {
			c = h.dialTLS(t, "http/1.1")
		} else {
			var err error
			if c, err = net.Dial("tcp", h.httpAddr); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("tls %v: first response %d, close %v; want 200 and Connection: close", tlsConn, resp.StatusCode, resp.Close)
		}
		if resp2, err := http.ReadResponse(br, nil); err == nil {
			t.Errorf("tls %v: the pipelined request was served (%d)", tlsConn, resp2.StatusCode)
		}
	}
	h.served(t)
}

// accessStatuses returns the statuses in the access log for path.
func (h *hostile) accessStatuses(t *testing.T, path string) []int {
	t.Helper()
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(h.acc.String()), "\n") {
		var m struct {
			Path   string
			Status int
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Path == path {
			out = append(out, m.Status)
		}
	}
	return out
}

// TestClientAbortIsClientError: uploads the client breaks off are 499 in
// the access log and an info line (rate-limited), never an upstream
// failure; a malformed chunked body is 400, small or large.
func TestClientAbortIsClientError(t *testing.T) {
	h := startHostile(t, Options{}, nil)
	for i := range 20 {
		c := h.dialTLS(t, "http/1.1")
		sent := 100 // within the buffered first part
		if i%2 == 1 {
			sent = 70000 // beyond it: streaming to the upstream when the client goes
		}
		io.WriteString(c, "POST /up/abort HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("b", sent))
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}
	h.served(t)
	for _, size := range []int{10, 70000} {
		c := h.dialTLS(t, "http/1.1")
		fmt.Fprintf(c, "POST /up/chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n", size, strings.Repeat("c", size))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed chunked body after %d bytes: %d, want 400", size, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.accessStatuses(t, "/up/abort")) < 20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, st := range h.accessStatuses(t, "/up/abort") {
		if st != StatusClientClosed {
			t.Errorf("aborted upload logged with status %d, want 499", st)
		}
	}
	if n := len(h.accessStatuses(t, "/up/abort")); n != 20 {
		t.Errorf("%d access log lines for 20 aborted uploads", n)
	}
	log := h.log.String()
	if strings.Contains(log, "upstream failed") || strings.Contains(log, "level=WARN") {
		t.Errorf("client errors blamed on the upstream or logged as warnings:\n%s", log)
	}
	if n := strings.Count(log, "proxy: client error"); n < 1 || n > 4 {
		t.Errorf("%d client error lines for 22 client errors within a second or so, want 1 to 4 (rate-limited):\n%s", n, log)
	}
	if st := h.Stats(); st.ClientErrors != 22 {
		t.Errorf("ClientErrors = %d, want 22", st.ClientErrors)
	}
}

// TestForwardingHeadersStripped: identity and URL headers a client
// makes up do not reach the upstream, unless it is a trusted proxy.
func TestForwardingHeadersStripped(t *testing.T) {
	headers := []string{"X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Original-URL", "X-Forwarded-For", "X-Forwarded-Host"}
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range headers {
			fmt.Fprintf(w, "%s=%s\n", k, r.Header.Get(k))
		}
	}))
	c := newTestCert(t, "a.test", "b.test")
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()},
		{Names: []string{"b.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source(),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}}, c)
	var hdr []string
	for _, k := range headers {
		hdr = append(hdr, k, "spoofed")
	}
	_, body := get(t, ts.client(t, false), "https://a.test/", hdr...)
	for _, k := range headers {
		v := ""
		switch k {
		case "X-Forwarded-For":
			v = "127.0.0.1"
		case "X-Forwarded-Host":
			v = "a.test"
		}
		if !strings.Contains(body, k+"="+v+"\n") {
			t.Errorf("untrusted client: upstream saw %s other than %q:\n%s", k, v, body)
		}
	}
	_, body = get(t, ts.client(t, false), "https://b.test/", hdr...)
	for _, k := range headers {
		v := "spoofed"
		if k == "X-Forwarded-For" {
			v = "spoofed, 127.0.0.1"
		}
		if !strings.Contains(body, k+"="+v+"\n") {
			t.Errorf("trusted proxy: upstream saw %s other than %q:\n%s", k, v, body)
		}
	}
}

// TestForwardingHeaderAliases: the same kind as TestForwardingHeadersStripped,
// spelled otherwise. A forwarding or identity header written with '_'
// for '-' (which CGI, FastCGI and WSGI upstreams read as the real one)
// reaches no upstream, from anyone; nor do the client-certificate
// headers of other TLS terminators (RFC 9440 Client-Cert, Envoy's
// X-Forwarded-Client-Cert, X-SSL-Client-*); the user headers of
// authenticating proxies (Remote-User, X-Forwarded-User, ...) pass
// from a trusted proxy only. A header with '_' that aliases none of
// them passes.
func TestForwardingHeaderAliases(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.Header {
			fmt.Fprintf(w, "%s=%s\n", k, strings.Join(v, ","))
		}
	}))
	c := newTestCert(t, "a.test", "b.test")
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()},
		{Names: []string{"b.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source(),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	}}, c)
	aliases := []string{"X_Real_IP", "X-Forwarded_For", "X_Forwarded_Host", "X-Forwarded_Proto", "True_Client_IP",
		"X_Original_URL", "X-Client-Cert_Subject", "Remote_User"}
	certs := []string{"Client-Cert", "Client-Cert-Chain", "X-Forwarded-Client-Cert", "X-SSL-Client-Verify", "X-Ssl-Client-S-Dn",
		"SSL-Client-Cert", "X-Client-Verify", "X-Client-DN", "X-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info",
		"X-ARR-ClientCert", "X-Amzn-Mtls-Clientcert-Leaf", "Client_Cert"}
	users := []string{"Remote-User", "X-Remote-User", "X-Forwarded-User", "X-Forwarded-Email", "X-Auth-Request-User", "X-WEBAUTH-USER"}
	var hdr []string
	for _, k := range slices.Concat(aliases, certs, users, []string{"X_App_Version"}) {
		hdr = append(hdr, k, "spoofed")
	}
	saw := func(body, k string) bool {
		return strings.Contains(body, http.CanonicalHeaderKey(k)+"=spoofed")
	}
	for _, site := range []string{"a.test", "b.test"} {
		_, body := get(t, ts.client(t, false), "https://"+site+"/", hdr...)
		for _, k := range slices.Concat(aliases, certs) {
			if saw(body, k) {
				t.Errorf("%s: upstream saw %s:\n%s", site, k, body)
			}
		}
		for _, k := range users {
			if trusted := site == "b.test"; saw(body, k) != trusted {
				t.Errorf("%s (trusted proxy %v): upstream saw %s %v, want %v:\n%s", site, trusted, k, !trusted, trusted, body)
			}
		}
		if !saw(body, "X_App_Version") {
			t.Errorf("%s: X_App_Version, an alias of nothing, did not pass:\n%s", site, body)
		}
		if strings.Contains(body, "X-Forwarded-For=spoofed") {
			t.Errorf("%s: a client's X-Forwarded_For merged into X-Forwarded-For:\n%s", site, body)
		}
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithCancel(context.Background())
}
