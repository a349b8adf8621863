package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cutUpstream answers /up/stream with the start of a long answer and
// then waits for the request to end, and /up/cut with half the body its
// Content-Length announces before closing the connection.
var cutUpstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/up/stream":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("s", 4096))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	case "/up/cut":
		w.Header().Set("Content-Length", "10000")
		io.WriteString(w, strings.Repeat("c", 5000))
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}
})

// TestProxyDownloadAbortIsClientError: a client that goes away while the
// proxy copies an answer to it, over HTTP/1.1 or HTTP/2, is a client
// error (an info line, rate-limited, counted), never a warning that
// blames the upstream (ReverseProxy logged "read error during body copy"
// for each one, with neither upstream nor path).
func TestProxyDownloadAbortIsClientError(t *testing.T) {
	h := startHostile(t, Options{}, cutUpstream)
	for range 10 {
		c := h.dialTLS(t, "http/1.1")
		io.WriteString(c, "GET /up/stream HTTP/1.1\r\nHost: a.test\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	hc := h.client(t, true)
	for range 10 {
		resp, err := hc.Get("https://a.test/up/stream")
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s, want HTTP/2", resp.Proto)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // resets the stream
	}
	h.served(t)
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().ClientErrors < 20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := h.Stats(); st.ClientErrors != 20 {
		t.Errorf("ClientErrors = %d, want 20", st.ClientErrors)
	}
	log := h.log.String()
	if strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
		t.Errorf("downloads the client broke off logged as warnings:\n%s", log)
	}
	if n := strings.Count(log, "proxy: client error"); n < 1 || n > 4 {
		t.Errorf("%d client error lines for 20 aborted downloads within a second or so, want 1 to 4 (rate-limited):\n%s", n, log)
	}
}

// TestProxyUpstreamCutLogged: an upstream that closes its connection
// before the body it announced is whole is logged as the upstream's
// failure, with the upstream, the path and the bytes it sent (the
// client's connection is then broken off, as nginx does, since its
// answer cannot be completed).
func TestProxyUpstreamCutLogged(t *testing.T) {
	h := startHostile(t, Options{}, cutUpstream)
	for _, h2 := range []bool{false, true} {
		resp, err := h.client(t, h2).Get("https://a.test/up/cut")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil || n > 5000 {
			t.Errorf("HTTP/2 %v: client read %d bytes and error %v, want at most 5000 and an error", h2, n, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(h.log.String(), "proxy: upstream answer cut") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log := h.log.String()
	want := fmt.Sprintf("upstream=%s path=/up/cut bytes=5000", h.up.addr)
	if n := strings.Count(log, "level=WARN msg=\"proxy: upstream answer cut\" "+want); n != 2 {
		t.Errorf("%d warnings with %q for 2 cut answers:\n%s", n, want, log)
	}
	if strings.Contains(log, "level=WARN msg=\"httputil:") {
		t.Errorf("ReverseProxy's own line, without upstream or path, still logged:\n%s", log)
	}
	if st := h.Stats(); st.ClientErrors != 0 {
		t.Errorf("ClientErrors = %d for the upstream's failures, want 0", st.ClientErrors)
	}
}
