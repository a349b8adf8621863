package admin_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// countingListener counts the connections the server accepted and still
// holds open.
type countingListener struct {
	net.Listener
	open atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// serveReal runs admin.Serve over a fake source on a loopback listener
// until the test ends, and returns its address and the listener.
func serveReal(t *testing.T) (string, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("ok", nil)}, nil)
	h, err := admin.New(admin.Options{Source: fakeSource{rep}, Logger: testLogger(t), Listen: l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Serve(ctx, cl, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), cl
}

// TestSlowBodyLetGo: a client that sends a request body a byte at a
// time does not hold its connection (and a file descriptor of the
// process serving the sites) for ever: on an endpoint that reads no body
// the connection is closed once answered, and POST /debug/pprof/symbol
// gives up on the body after a deadline.
func TestSlowBodyLetGo(t *testing.T) {
	addr, _ := serveReal(t)
	for _, tt := range []struct {
		path  string
		code  int
		limit time.Duration
	}{
		{"/healthz", http.StatusMethodNotAllowed, 5 * time.Second},
		{"/status", http.StatusMethodNotAllowed, 5 * time.Second},
		{"/debug/pprof/symbol", http.StatusRequestTimeout, 20 * time.Second},
	} {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n0x1", tt.path, addr)
			stop := make(chan struct{})
			defer close(stop)
			go trickle(c, stop)
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(tt.limit + 5*time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %v: %v", tt.limit+5*time.Second, err)
			}
			if resp.StatusCode != tt.code {
				t.Errorf("answered %d, want %d", resp.StatusCode, tt.code)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if _, err := br.ReadByte(); err == nil || time.Since(start) > tt.limit {
				t.Errorf("the connection is still open %v after the request began (read: %v)", time.Since(start).Round(time.Second), err)
			}
		})
	}
}

// trickle writes one byte a second to c until stop is closed.
func trickle(c net.Conn, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Second):
			if _, err := c.Write([]byte("0")); err != nil {
				return
			}
		}
	}
}

// TestConnectionsCapped: a client opening connections without end gets
// at most admin.MaxConns of them served, and one more accepted; the
// others wait in the listen backlog, and are served once connections
// close.
func TestConnectionsCapped(t *testing.T) {
	addr, cl := serveReal(t)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range admin.MaxConns + 30 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	// One past the cap is accepted and waits for a place (or takes an
	// idle connection's); the others stay in the backlog.
	if n := cl.open.Load(); n > admin.MaxConns+1 {
		t.Errorf("%d connections accepted at once, want at most %d", n, admin.MaxConns+1)
	}
	for _, c := range conns[:40] {
		_ = c.Close()
	}
	c := conns[len(conns)-1]
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a waiting connection is not served once others closed: %v", err)
	}
}
