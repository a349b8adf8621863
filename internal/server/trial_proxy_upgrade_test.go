package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cUpstream switches to whatever HTTP/2 upgrade it is asked for, as
// x/net/http2/h2c and other cleartext HTTP/2 servers do, and then
// echoes what comes through the tunnel.
func h2cUpstream(t *testing.T) *recordingUpstream {
	return startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		up := r.Header.Get("Upgrade")
		if up == "" {
			io.WriteString(c, okAnswer)
			return true
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+up+"\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 512)
		n, _ := c.Read(b)
		io.WriteString(c, "tunneled: "+string(b[:n]))
		return false
	})
}

// TestTrialProxyNoHTTP2Upgrade: a client must not get from an upstream a
// connection upgraded to HTTP/2 over cleartext (h2c smuggling): through
// it, every further request reaches the upstream as the client writes
// it, past routes, require_paths, X-Forwarded-For and the identity
// headers. The proxy passed "Upgrade: h2c" (and HTTP2-Settings when the
// client did not name it in Connection) and tunnelled the upstream's
// 101. An upgrade to HTTP/2 is never valid through a TLS front end (RFC
// 9113 §3.1: h2c is for cleartext; "h2" is never sent in Upgrade): the
// request must reach the upstream as a plain one, on both transports.
func TestTrialProxyNoHTTP2Upgrade(t *testing.T) {
	up := h2cUpstream(t)
	ts := proxyServer(t, up.addr)
	big := strings.Repeat("b", bodyBufferSize+1000) // http.Transport's path
	for _, tc := range []struct{ name, head, body string }{
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", ""},
		{"settings not named", "Connection: Upgrade\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", ""},
		{"h2", "Connection: upgrade\r\nUpgrade: h2\r\n", ""},
		{"HTTP/2.0", "Connection: upgrade\r\nUpgrade: HTTP/2.0\r\n", ""},
		{"in a list", "Connection: Upgrade\r\nUpgrade: h2c, HTTP/2.0\r\n", ""},
		{"big body", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(up.bytes())
			method := "GET"
			if tc.body != "" {
				method = "POST"
			}
			req := method + " /x HTTP/1.1\r\nHost: a.test\r\n" + tc.head
			if tc.body != "" {
				req += "Content-Length: " + strconv.Itoa(len(tc.body)) + "\r\n"
			}
			resp := rawExchange(t, ts, req+"\r\n"+tc.body+"GET /tunneled HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || strings.Contains(resp, "tunneled: ") {
				t.Errorf("client got %q", short([]byte(resp), false))
			}
			seen := strings.ToLower(up.bytes()[n:])
			if strings.Contains(seen, "upgrade: ") || strings.Contains(seen, "http2-settings") {
				t.Errorf("upstream got an HTTP/2 upgrade:\n%s", short([]byte(seen), false))
			}
		})
	}
}

// TestTrialProxyWebSocketUpgradeKept: the fix above leaves other
// upgrades alone.
func TestTrialProxyWebSocketUpgradeKept(t *testing.T) {
	up := h2cUpstream(t)
	resp, tunneled, err := upgradeThrough(t, proxyServer(t, up.addr), "Connection: Upgrade\r\nUpgrade: websocket\r\n")
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("websocket upgrade: %v %v, want 101", resp, err)
	}
	if tunneled != "tunneled: hello" {
		t.Errorf("through the tunnel: %q", tunneled)
	}
}

// upgradeThrough sends ts an upgrade request for /ws with the header
// lines head over HTTP/1.1, and returns the answer and, when it is a
// 101, what the tunnel answers to "hello" (h2cUpstream's tunnel echoes
// it as "tunneled: hello").
func upgradeThrough(t *testing.T, ts *testServer, head string) (*http.Response, string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a.test\r\n"+head+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, "", err
	}
	io.WriteString(c, "hello")
	b, _ := io.ReadAll(br)
	return resp, string(b), nil
}

// TestProxyUpgradeListKeepsWebSocket: an upgrade offering HTTP/2 beside
// another protocol ("websocket, h2c") goes up without the HTTP/2 one and
// the WebSocket session works; the whole upgrade was dropped, and the
// client got a plain answer where it asked for a WebSocket.
func TestProxyUpgradeListKeepsWebSocket(t *testing.T) {
	up := h2cUpstream(t)
	resp, tunneled, err := upgradeThrough(t, proxyServer(t, up.addr),
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket, h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n")
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade to websocket, h2c: %v %v, want 101 to websocket", resp, err)
	}
	if tunneled != "tunneled: hello" {
		t.Errorf("through the tunnel: %q", tunneled)
	}
	seen := strings.ToLower(up.bytes())
	if !strings.Contains(seen, "upgrade: websocket\r\n") || strings.Contains(seen, "h2c") || strings.Contains(seen, "http2-settings") {
		t.Errorf("upstream got:\n%s", short([]byte(seen), false))
	}
}

// TestTrialProxyConnectRefused: CONNECT (HTTP/1.1 authority form, and
// HTTP/2 without :path) is no request for a reverse proxy's upstream. It
// went up as "CONNECT / HTTP/1.1", so an upstream that tunnels CONNECT
// (a forward proxy, a debugging proxy) gave every client a tunnel from
// its network; and a 2xx answer without a body let the upstream's
// connection go back to the pool in tunnel mode, for the next client's
// request. It is answered 501 and the upstream sees nothing.
func TestTrialProxyConnectRefused(t *testing.T) {
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\nContent-Length: 0\r\n\r\n")
		return true
	})
	ts := proxyServer(t, up.addr)
	resp := rawExchange(t, ts, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 501 ") {
		t.Errorf("HTTP/1.1 CONNECT: client got %q", short([]byte(resp), false))
	}
	h := &hostile{testServer: ts}
	hc := h.dialH2(t)
	hc.buf.Reset()
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "CONNECT"}, {Name: ":authority", Value: "a.test:443"}} {
		hc.enc.WriteField(f)
	}
	if err := hc.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hc.buf.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	status := ""
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	hc.until(5*time.Second, func(fr http2.Frame) bool {
		if hf, ok := fr.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
			dec.Write(hf.HeaderBlockFragment())
			return true
		}
		_, reset := fr.(*http2.RSTStreamFrame)
		return reset
	})
	if status != "501" {
		t.Errorf("HTTP/2 CONNECT: status %q, want 501", status)
	}
	if b := up.bytes(); b != "" {
		t.Errorf("upstream got:\n%s", b)
	}
}

// TestProxyUpstreamBasePaths: upstreams of one proxy must put requests
// under one path, and "http://a:1" and "http://b:1/" do (neither adds
// anything), so they are taken together, as config's check takes them;
// "/x" beside "/y" is refused.
func TestProxyUpstreamBasePaths(t *testing.T) {
	if _, err := newProxy([]string{"http://127.0.0.1:1", "http://127.0.0.2:1/"}, ProxyTLS{}, proxyHeaders{}, nil, upstreamIdentity{}, &proxyEnv{}); err != nil {
		t.Errorf(`upstreams with paths "" and "/": %v`, err)
	}
	if _, err := newProxy([]string{"http://127.0.0.1:1/x/", "http://127.0.0.2:1/y/"}, ProxyTLS{}, proxyHeaders{}, nil, upstreamIdentity{}, &proxyEnv{}); err == nil {
		t.Error(`upstreams with paths "/x/" and "/y/": no error`)
	}
}

// TestProxyTrustedMapped: a trusted proxy given as an IPv4-mapped
// address or network (Site.TrustedProxies from a library user; the
// config turns them into IPv4 ones) is trusted when it connects over
// IPv4: the client's address was compared in its IPv4 form only.
func TestProxyTrustedMapped(t *testing.T) {
	for _, pf := range []string{"::ffff:127.0.0.1/128", "::ffff:127.0.0.0/104", "127.0.0.1/32"} {
		p, err := newProxy([]string{"http://127.0.0.1:1"}, ProxyTLS{}, proxyHeaders{}, []netip.Prefix{netip.MustParsePrefix(pf)}, upstreamIdentity{}, &proxyEnv{})
		if err != nil {
			t.Fatal(err)
		}
		for _, remote := range []string{"127.0.0.1:5555", "[::ffff:127.0.0.1]:5555"} {
			if !p.isTrusted(remote) {
				t.Errorf("trusted %s: client %s not trusted", pf, remote)
			}
		}
		if p.isTrusted("10.0.0.1:5555") || p.isTrusted("[::1]:5555") {
			t.Errorf("trusted %s: another client trusted", pf)
		}
	}
}
