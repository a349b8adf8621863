package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeAdminGuards attacks the admin listener of the built binary as
// a web page of another site and as a local client would: requests the
// browser sends for another site's page (an image that forces a garbage
// collection, a form POST, a POST with a foreign Origin) are refused, a
// huge POST /debug/pprof/symbol is refused with 413 rather than held in
// memory ten times over, a body sent a byte at a time does not hold its
// connection, and no answer may be framed.
func TestServeAdminGuards(t *testing.T) {
	e := newEnv(t)
	e.config(fmt.Sprintf("[[site]]\nnames = [\"guard.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("guard.example.test", 60*time.Second)
	base := "http://" + e.admin
	c := &http.Client{Timeout: 10 * time.Second}

	do := func(method, path, body string, header map[string]string) (int, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header
	}
	img := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
	if code, _ := do("GET", "/debug/pprof/heap?gc=1", "", img); code != http.StatusForbidden {
		t.Errorf("an image of another site's page on /debug/pprof/heap: %d, want 403", code)
	}
	form := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	if code, _ := do("POST", "/debug/pprof/symbol", "0x1", form); code != http.StatusForbidden {
		t.Errorf("a form POST of another site's page: %d, want 403", code)
	}
	if code, _ := do("POST", "/debug/pprof/symbol", "0x1", map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("a POST with a foreign Origin: %d, want 403", code)
	}
	if code, _ := do("GET", "/", "", form); code != http.StatusOK {
		t.Errorf("a link from another site to the status page: %d, want 200", code)
	}
	if code, _ := do("POST", "/debug/pprof/symbol", strings.Repeat("0x401000+", 4<<20/9), nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 4 MiB POST /debug/pprof/symbol: %d, want 413", code)
	}
	if code, h := do("GET", "/debug/pprof/", "", nil); code != 200 || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /debug/pprof/: %d, X-Frame-Options %q", code, h.Get("X-Frame-Options"))
	}
	checkSlowBodyLetGo(t, e.admin)
}

// checkSlowBodyLetGo sends a POST /healthz whose body comes a byte a
// second and checks that the connection is closed once it is answered.
func checkSlowBodyLetGo(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /healthz HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n0", addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				if _, err := conn.Write([]byte("0")); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(15 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("POST /healthz with a slow body: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("POST /healthz with a slow body: the connection is still open after %v (%v)", time.Since(start).Round(time.Second), err)
	}
}
