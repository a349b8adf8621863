package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowDialAddr is a loopback address whose listener never accepts and
// whose accept queue is full, so that Linux drops further SYNs: a dial
// to it hangs until it is broken off.
func slowDialAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 4 { // fill the accept queue
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a dial to the full listener went through")
	}
	return addr
}

// TestTrialProxyClientGoneNotUpstreamDown: a client that leaves while
// the proxy is still connecting to an upstream breaks the dial off; that
// says nothing about the upstreams. It took the upstream being dialled
// out of the rotation, then "failed over" with the ended context, so
// that every other upstream's dial failed at once and each was taken
// out too, with a WARN "upstream unreachable" naming healthy upstreams:
// any client could empty the rotation (and fill the log) by leaving
// early.
func TestTrialProxyClientGoneNotUpstreamDown(t *testing.T) {
	good := startRawUpstream(t, nil, answering(func(r *http.Request, _ int, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
		return false // nothing pooled: each request dials
	}))
	slow := slowDialAddr(t)
	log := &syncBuffer{}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + slow, "http://" + good.addr}, Cert: c.source()}},
		Logger: slog.New(slog.NewTextHandler(log, nil))}, c)
	cl := ts.client(t, false)
	for range 2 { // round-robin: one of the two is dialled first
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		fetchBody(ctx, cl, http.MethodGet, "https://a.test/", "")
		cancel()
	}
	time.Sleep(100 * time.Millisecond)
	p := ts.table.Load().sites[0].main.(*proxy)
	for _, u := range p.ups {
		if u.downUntil.Load() != 0 {
			t.Errorf("upstream %s taken out of the rotation by a client that left", u.url.Host)
		}
	}
	if strings.Contains(log.String(), "unreachable") {
		t.Errorf("log:\n%s", log.String())
	}
}
