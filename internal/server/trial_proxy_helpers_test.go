package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingUpstream is a raw upstream that keeps every byte it receives,
// for tests of what exactly reaches an upstream through the proxy.
type recordingUpstream struct {
	*rawUpstream
	mu   sync.Mutex
	seen strings.Builder
}

// startRecordingUpstream answers each request it parses with answer (nil:
// okAnswer); answer returns false to end the connection.
func startRecordingUpstream(t *testing.T, answer func(r *http.Request, c net.Conn) bool) *recordingUpstream {
	t.Helper()
	ru := &recordingUpstream{}
	ru.rawUpstream = startRawUpstream(t, nil, func(c net.Conn, _ *bufio.Reader) {
		br := bufio.NewReader(recordingReader{c: c, u: ru})
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			if answer == nil {
				io.WriteString(c, okAnswer)
				continue
			}
			if !answer(r, c) {
				return
			}
		}
	})
	return ru
}

// bytes returns everything received so far, on all connections.
func (ru *recordingUpstream) bytes() string {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.seen.String()
}

type recordingReader struct {
	c net.Conn
	u *recordingUpstream
}

func (r recordingReader) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	r.u.mu.Lock()
	r.u.seen.Write(p[:n])
	r.u.mu.Unlock()
	return n, err
}

// rawExchange writes request as it is on a new HTTP/1.1 TLS connection
// to ts and returns every byte the server sends until it closes the
// connection or 5 s pass.
func rawExchange(t *testing.T, ts *testServer, request string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.httpsAddr,
		&tls.Config{ServerName: "a.test", RootCAs: ts.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// requestLine returns the request line of an upstream request whose
// head is req ("GET /x HTTP/1.1").
func requestLine(req string) string {
	line, _, _ := strings.Cut(req, "\r\n")
	return line
}
