package admin_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// keepAlive opens a connection to addr, has one request answered on it
// and leaves it open, idle between requests, until the test ends.
func keepAlive(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("keep-alive connection %d: %v", c.LocalAddr().(*net.TCPAddr).Port, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

// TestReviewIdleConnectionsGiveWay: admin.MaxConns idle keep-alive
// connections (a client that opened many and keeps them, or the
// sockets a browser pools) do not lock a scraper out: at the cap an idle
// connection is closed to make room, as the HTTPS server does at
// max_connections.
func TestReviewIdleConnectionsGiveWay(t *testing.T) {
	addr, _ := serveReal(t)
	for range admin.MaxConns {
		keepAlive(t, addr)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %d with %d idle connections open: %v", i, admin.MaxConns, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("scrape %d took %v", i, d)
		}
	}
}

// TestReviewIdleConnectionsKept: below the cap, and at it with nobody
// waiting, idle keep-alive connections stay open.
func TestReviewIdleConnectionsKept(t *testing.T) {
	addr, _ := serveReal(t)
	var conns []net.Conn
	for range admin.MaxConns {
		conns = append(conns, keepAlive(t, addr))
	}
	time.Sleep(time.Second)
	for i, c := range conns {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d was closed while nobody waited: %v", i, err)
		}
		resp.Body.Close()
	}
}

// TestReviewShutdownAtTheCap: Serve returns within its 5 seconds when
// the cap is reached, by idle keep-alive connections, by connections
// that sent nothing yet or by a request in flight, and clients wait in
// the backlog.
func TestReviewShutdownAtTheCap(t *testing.T) {
	for _, hold := range []string{"idle", "new", "busy"} {
		t.Run(hold, func(t *testing.T) {
			t.Parallel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("ok", nil)}, nil)
			h, err := admin.New(admin.Options{Source: fakeSource{rep}, Logger: testLogger(t), Listen: addr})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- admin.Serve(ctx, l, h) }()
			for i := range admin.MaxConns + 10 {
				switch {
				case hold == "idle" && i < admin.MaxConns:
					keepAlive(t, addr)
				case hold == "busy" && i == 0:
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.Close() })
					fmt.Fprintf(c, "GET /debug/pprof/heap?seconds=60 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
				default:
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.Close() })
				}
			}
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
				if d := time.Since(start); d > 6*time.Second {
					t.Errorf("Serve returned %v after ctx ended", d)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Serve still running 15 s after ctx ended")
			}
		})
	}
}
