package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
)

// TestTrialProxyStatusBelow100: an upstream answering with a status
// code under 100 ("HTTP/1.1 099", "000": three digits, which
// http.ReadResponse accepts) gets 502. upstreamTransport took it for an
// interim answer and passed it on; ReverseProxy's WriteHeader(99)
// panicked in the handler: the client's connection was dropped without
// an answer, the upstream connection was left open, and the panic went
// to the debug log only. (http.Transport took it for a final answer,
// with the same panic.)
func TestTrialProxyStatusBelow100(t *testing.T) {
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 "+strings.TrimPrefix(r.URL.Path, "/")+" Odd\r\nX-Odd: 1\r\n\r\n"+okAnswer)
		return true
	})
	log := &syncBuffer{}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}},
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}, c)
	for _, h2 := range []bool{false, true} {
		cl := ts.client(t, h2)
		for _, code := range []string{"099", "000", "010"} {
			for _, body := range []string{"", bigBody} { // upstreamTransport, http.Transport
				method := http.MethodGet
				if body != "" {
					method = http.MethodPost
				}
				got, _, err := fetchBody(t.Context(), cl, method, "https://a.test/"+code, body)
				if got != http.StatusBadGateway {
					t.Errorf("%s %s (HTTP/2 %v): %d %v, want 502", method, code, h2, got, err)
				}
			}
		}
		cl.Transport.(*http.Transport).CloseIdleConnections()
	}
	up.waitClosed(t, 0, "after answers with a status under 100")
	if n := strings.Count(log.String(), "panic serving"); n > 0 {
		t.Errorf("the server panicked %d times (invalid WriteHeader code)", n)
	}
}

// TestTrialProxyInterimHopByHop: an interim answer (103 Early Hints)
// reaches the client without the upstream's hop-by-hop fields
// (Connection, those it names, Keep-Alive, Upgrade, Proxy-Connection,
// Transfer-Encoding, TE, Trailer: RFC 9110 §7.6.1), as a final answer
// does. ReverseProxy passed interim answers on with every field, on
// both transports and to HTTP/2 clients too, where a connection-specific
// field makes the message malformed (RFC 9113 §8.2.2).
func TestTrialProxyInterimHopByHop(t *testing.T) {
	const hints = "HTTP/1.1 103 Early Hints\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
		"Upgrade: h2c\r\nProxy-Connection: keep-alive\r\nTe: trailers\r\nTrailer: X-T\r\nLink: </s.css>; rel=preload\r\n\r\n"
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		io.WriteString(c, hints+okAnswer)
		return true
	})
	ts := proxyServer(t, up.addr)
	hop := []string{"Connection", "X-Hop", "Keep-Alive", "Upgrade", "Proxy-Connection", "Te", "Trailer"}
	for _, h2 := range []bool{false, true} {
		cl := ts.client(t, h2)
		for _, body := range []string{"", bigBody} { // upstreamTransport, http.Transport
			var interim []http.Header
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					interim = append(interim, http.Header(h).Clone())
					return nil
				},
			})
			code, got, err := fetchInterim(ctx, cl, body)
			if code != 200 || got != "ok" {
				t.Errorf("HTTP/2 %v, body %d: %d %q %v, want 200 ok", h2, len(body), code, got, err)
				continue
			}
			if len(interim) != 1 || interim[0].Get("Link") == "" {
				t.Errorf("HTTP/2 %v, body %d: interim answers %v, want one 103 with Link", h2, len(body), interim)
				continue
			}
			for _, k := range hop {
				if v, ok := interim[0][k]; ok {
					t.Errorf("HTTP/2 %v, body %d: the 103 passed on %s: %q", h2, len(body), k, v)
				}
			}
		}
	}
}

func fetchInterim(ctx context.Context, cl *http.Client, body string) (int, string, error) {
	method := http.MethodGet
	if body != "" {
		method = http.MethodPost
	}
	return fetchBody(ctx, cl, method, "https://a.test/hints", body)
}

// TestTrialProxyHugeHeadBothTransports: an answer head over
// maxResponseHead (1 MiB) is refused with 502 on both transports, as
// docs/config.md says. http.Transport, which takes bodies over 64 KiB
// and https upstreams, allowed its default of 10 MiB and passed a 2 MiB
// head on.
func TestTrialProxyHugeHeadBothTransports(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
	up := startRecordingUpstream(t, func(r *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat(pad, 2<<10)+"Content-Length: 2\r\n\r\nok")
		return true
	})
	cl := proxyServer(t, up.addr).client(t, false)
	for _, body := range []string{"", bigBody} {
		method := http.MethodGet
		if body != "" {
			method = http.MethodPost
		}
		if code, _, err := fetchBody(t.Context(), cl, method, "https://a.test/", body); code != http.StatusBadGateway {
			t.Errorf("%s with a 2 MiB answer head: %d %v, want 502", method, code, err)
		}
	}
}
