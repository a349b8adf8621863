package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoHeaders answers with the forwarding headers it received.
func echoHeaders(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "upstream-value")
		w.Header().Set("X-Upstream", id)
		fmt.Fprintf(w, "host=%s xff=%s xfp=%s xfh=%s path=%s",
			r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.URL.RequestURI())
	})
}

func TestProxy(t *testing.T) {
	up := startUpstream(t, echoHeaders("one"))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	resp, body := get(t, cl, "https://a.test/x/y?q=1", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.test")
	want := "host=a.test xff=127.0.0.1 xfp=https xfh=a.test path=/x/y?q=1"
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("proxied: %d %q, want %q", resp.StatusCode, body, want)
	}
	if got := resp.Header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
		t.Errorf("X-Content-Type-Options %q: the site's header must replace the upstream's", got)
	}
	for range 50 {
		get(t, cl, "https://a.test/")
	}
	if n := up.connCount(); n != 1 {
		t.Errorf("upstream saw %d connections for 51 sequential requests, want 1 (keep-alive)", n)
	}
}

func TestProxyRoundRobinAndFailover(t *testing.T) {
	one := startUpstream(t, echoHeaders("one"))
	two := startUpstream(t, echoHeaders("two"))
	dead := closedAddr(t)
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"},
		Proxy: []string{"http://" + one.addr, "http://" + dead, "http://" + two.addr}, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	seen := map[string]int{}
	for range 30 {
		resp, _ := get(t, cl, "https://a.test/")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d with one upstream down", resp.StatusCode)
		}
		seen[resp.Header.Get("X-Upstream")]++
	}
	if seen["one"] < 10 || seen["two"] < 10 {
		t.Errorf("round-robin uneven: %v", seen)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + closedAddr(t)}, Cert: c.source()}}}, c)
	resp, _ := get(t, ts.client(t, false), "https://a.test/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("security headers missing on 502")
	}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// wsEcho is a minimal WebSocket-style upstream: it checks the upgrade
// request, answers 101 and echoes bytes on the hijacked connection.
func wsEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("X-Forwarded-Proto") != "https" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := brw.Read(buf)
			if err != nil {
				return
			}
			conn.Write(buf[:n])
		}
	})
}

func TestProxyWebSocket(t *testing.T) {
	up := startUpstream(t, wsEcho(t))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source(),
		Routes: []Route{{Path: "/ws", Proxy: []string{"http://" + up.addr}}}}}}, c)
	conn, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello", "over the proxy"} {
		io.WriteString(conn, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q: got %q, %v", msg, got, err)
		}
	}
}

// TestProxyWebSocketBytesLogged: the access log line of a WebSocket
// session counts what the tunnel sent the client (it said 0 bytes).
func TestProxyWebSocketBytesLogged(t *testing.T) {
	up := startUpstream(t, wsEcho(t))
	c := newTestCert(t, "a.test")
	acc := &syncBuffer{}
	ts := startServer(t, Options{AccessLog: slog.New(slog.NewJSONHandler(acc, nil)),
		Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source(),
			Routes: []Route{{Path: "/ws", Proxy: []string{"http://" + up.addr}}}}}}, c)
	conn, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("m", 3000)
	io.WriteString(conn, msg)
	if _, err := io.ReadFull(br, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	var line struct {
		Status int
		Bytes  int64
	}
	deadline := time.Now().Add(5 * time.Second)
	for line.Status == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		for _, l := range strings.Split(strings.TrimSpace(string(acc.Bytes())), "\n") {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Status != http.StatusSwitchingProtocols || line.Bytes < int64(len(msg)) {
		t.Errorf("access log: status %d, %d bytes; want 101 and at least the %d bytes echoed", line.Status, line.Bytes, len(msg))
	}
}

func TestRoutesLongestPrefix(t *testing.T) {
	api := startUpstream(t, echoHeaders("api"))
	v2 := startUpstream(t, echoHeaders("v2"))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source(),
		Routes: []Route{
			{Path: "/api/", Proxy: []string{"http://" + api.addr}},
			{Path: "/api/v2/", Proxy: []string{"http://" + v2.addr}},
			{Path: "/old", Redirect: "https://new.test{uri}"},
		}}}}, c)
	cl := ts.client(t, false)
	for path, want := range map[string]string{"/api/x": "api", "/api/v2/x": "v2", "/api/v2": "v2", "/api": "api"} {
		if resp, _ := get(t, cl, "https://a.test"+path); resp.Header.Get("X-Upstream") != want {
			t.Errorf("%s went to %q, want %q", path, resp.Header.Get("X-Upstream"), want)
		}
	}
	if _, body := get(t, cl, "https://a.test/hello.txt"); body != "hello, world\n" {
		t.Errorf("site root: %q", body)
	}
	resp, _ := get(t, cl, "https://a.test/old/page?x=1&y=%20")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://new.test/old/page?x=1&y=%20" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestRedirectSite(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Redirect: "https://b.test/new{uri}#top", Cert: c.source()}}}, c)
	resp, _ := get(t, ts.client(t, true), "https://a.test/p/q?r=s")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://b.test/new/p/q?r=s#top" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := newRedirect("{uri}"); err == nil {
		t.Error("a target starting with {uri} was accepted")
	}
}

// TestProxyConcurrent checks connection reuse under parallel load.
func TestProxyConcurrent(t *testing.T) {
	up := startUpstream(t, echoHeaders("one"))
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				resp, err := cl.Get("https://a.test/")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	// Eight at a time may need a few more than eight connections (a dial
	// can race a connection coming back idle), never one per request.
	if n := up.connCount(); n > 16 {
		t.Errorf("upstream saw %d connections for 400 requests from 8 parallel clients", n)
	}
}
