package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSNISelection(t *testing.T) {
	a, b := newTestCert(t, "a.test"), newTestCert(t, "b.test", "*.b.test")
	root := staticSite(t)
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"a.test"}, Root: root, Cert: a.source()},
		{Names: []string{"b.test", "*.b.test"}, Root: root, Cert: b.files()},
	}}, a, b)
	for sni, want := range map[string]string{"a.test": "a.test", "b.test": "b.test", "www.b.test": "b.test", "A.TEST": "a.test"} {
		leaf, err := ts.handshake(sni)
		if err != nil || leaf.Subject.CommonName != want {
			t.Errorf("SNI %s: %v, %v; want %s", sni, leaf, err, want)
		}
	}
	for _, sni := range []string{"c.test", "x.y.b.test", ""} {
		_, err := ts.handshake(sni)
		if err == nil {
			t.Errorf("SNI %q: handshake succeeded without a default site", sni)
		}
		if sni != "" && !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("SNI %q: %v, want an unrecognized_name alert", sni, err)
		}
	}
	// Host of another site on this connection: 421.
	code, _ := rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
	if code != http.StatusMisdirectedRequest {
		t.Errorf("Host b.test on an a.test connection: %d, want 421", code)
	}
	code, _ = rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET / HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n")
	if code != http.StatusMisdirectedRequest {
		t.Errorf("unknown Host: %d, want 421", code)
	}
	code, _ = rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET / HTTP/1.1\r\nHost: A.test:443\r\nConnection: close\r\n\r\n")
	if code != http.StatusOK {
		t.Errorf("Host A.test:443: %d, want 200", code)
	}
}

func TestDefaultSite(t *testing.T) {
	a, d := newTestCert(t, "a.test"), newTestCert(t, "default.test")
	var gotName string
	var mu sync.Mutex
	dsrc := CertSource{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		gotName = h.ServerName
		mu.Unlock()
		return &d.tls, nil
	}}
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"a.test"}, Root: staticSite(t), Cert: a.source()},
		{Names: []string{"default.test"}, Default: true, Redirect: "https://default.test/x", Cert: dsrc},
	}}, a, d)
	for _, sni := range []string{"", "unknown.test", "127.0.0.1"} {
		leaf, err := ts.handshake(sni)
		if err != nil || leaf.Subject.CommonName != "default.test" {
			t.Errorf("SNI %q: %v, %v; want the default site", sni, leaf, err)
		}
		mu.Lock()
		if gotName != "default.test" {
			t.Errorf("SNI %q: GetCertificate saw ServerName %q, want the site's name", sni, gotName)
		}
		mu.Unlock()
	}
	// A client without SNI, addressing the server by IP, reaches the default site.
	conn, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: " + ts.httpsAddr + "\r\nConnection: close\r\n\r\n"))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	conn.Close()
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 308")) {
		t.Errorf("no SNI: %q", buf[:n])
	}
}

func TestACMETLSALPN(t *testing.T) {
	a, challenge := newTestCert(t, "a.test"), newTestCert(t, "challenge")
	ts := startServer(t, Options{
		Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: a.source()}},
		ACMEGetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &challenge.tls, nil
		},
	}, a)
	conn, err := tls.Dial("tcp", ts.httpsAddr, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{alpnACME}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != alpnACME || st.PeerCertificates[0].Subject.CommonName != "challenge" {
		t.Errorf("acme-tls/1: protocol %q, cert %s", st.NegotiatedProtocol, st.PeerCertificates[0].Subject.CommonName)
	}
}

func TestHTTP2AndHeaders(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source(),
		HSTS: true, CSP: "default-src 'self'", HTTPRedirect: false,
		Headers: map[string]string{"x-frame-options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": ""},
	}}}, c)
	resp, body := get(t, ts.client(t, true), "https://a.test/hello.txt")
	if resp.ProtoMajor != 2 || body != "hello, world\n" {
		t.Fatalf("proto %s body %q, want HTTP/2", resp.Proto, body)
	}
	want := map[string]string{
		"Strict-Transport-Security": hstsValue,
		"Content-Security-Policy":   "default-src 'self'",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"X-Content-Type-Options":    "",
	}
	for k, v := range want {
		if got := resp.Header.Values(k); strings.Join(got, ",") != v {
			t.Errorf("HTTPS %s: %q, want %q", k, got, v)
		}
	}
	resp, _ = get(t, ts.plainClient(t), "http://a.test/hello.txt")
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("plain HTTP: %d, HSTS %q, X-Frame-Options %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"), resp.Header.Get("X-Frame-Options"))
	}
}

func TestDefaultSecurityHeaders(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	resp, _ := get(t, ts.client(t, false), "https://a.test/")
	if resp.Header.Get("Referrer-Policy") != "strict-origin-when-cross-origin" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("defaults missing: %v", resp.Header)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" || resp.Header.Get("Content-Security-Policy") != "" {
		t.Errorf("HSTS or CSP sent without being configured: %v", resp.Header)
	}
}

func TestPort80(t *testing.T) {
	c := newTestCert(t, "a.test", "b.test")
	root := staticSite(t)
	acme := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				w.Write([]byte("key-authorization"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	ts := startServer(t, Options{ACMEHTTP: acme, Sites: []Site{
		{Names: []string{"a.test"}, Root: root, Cert: c.source(), HTTPRedirect: true},
		{Names: []string{"b.test"}, Root: root, Cert: c.source(), HTTPRedirect: false},
	}}, c)
	port := ts.httpsAddr[strings.LastIndexByte(ts.httpsAddr, ':'):]
	pc := ts.plainClient(t)
	resp, _ := get(t, pc, "http://a.test/p?q=1")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://a.test"+port+"/p?q=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, host := range []string{"a.test", "b.test", "unknown.test"} {
		if _, body := get(t, pc, "http://"+host+"/.well-known/acme-challenge/tok"); body != "key-authorization" {
			t.Errorf("http-01 for %s: %q", host, body)
		}
	}
	if resp, body := get(t, pc, "http://b.test/hello.txt"); resp.StatusCode != 200 || body != "hello, world\n" {
		t.Errorf("http_redirect=false: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, pc, "http://unknown.test/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host on port 80: %d, want 404", resp.StatusCode)
	}
}

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{AccessLog: slog.New(slog.NewJSONHandler(&buf, nil)),
		Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	get(t, ts.client(t, true), "https://a.test/hello.txt")
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("access log %q: %v", buf.Bytes(), err)
	}
	want := map[string]any{"method": "GET", "host": "a.test", "path": "/hello.txt", "status": 200.0, "bytes": 13.0, "proto": "HTTP/2.0", "site": "a.test"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if d, ok := line["duration_ms"].(float64); line["remote"] == nil || !ok || d <= 0 || d > 60000 {
		t.Errorf("access log lacks remote or duration_ms (a number of milliseconds): %v", line)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func TestCertFileReload(t *testing.T) {
	c1, c2 := newTestCert(t, "a.test"), newTestCert(t, "a.test")
	live := newTestCert(t, "a.test")
	copyFile(t, c1.certFile, live.certFile)
	copyFile(t, c1.keyFile, live.keyFile)
	ts := startServer(t, Options{CertCheckInterval: 20 * time.Millisecond,
		Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: live.files()}}})
	leaf, err := ts.handshake("a.test")
	if err != nil || !leaf.Equal(c1.leaf) {
		t.Fatalf("first certificate: %v", err)
	}
	// A certificate without its key does not load: the old pair stays.
	copyFile(t, c2.certFile, live.certFile)
	time.Sleep(100 * time.Millisecond)
	if leaf, err := ts.handshake("a.test"); err != nil || !leaf.Equal(c1.leaf) {
		t.Fatalf("half-written pair: %v", err)
	}
	copyFile(t, c2.keyFile, live.keyFile)
	waitFor(t, func() bool { leaf, err := ts.handshake("a.test"); return err == nil && leaf.Equal(c2.leaf) })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	slow := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte("done"))
	}))
	c := newTestCert(t, "a.test")
	s, err := New(Options{HTTPSListener: listen(t), Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + slow.addr}, Cert: c.source()}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, httpsAddr: s.opts.HTTPSListener.Addr().String(), roots: poolOf(c)}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	cl := ts.client(t, false)
	got := make(chan string, 1)
	go func() {
		resp, err := cl.Get("https://a.test/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		got <- b.String()
	}()
	time.Sleep(100 * time.Millisecond) // the request is in flight
	cancel()
	time.Sleep(100 * time.Millisecond)
	if _, err := ts.handshake("a.test"); err == nil {
		t.Error("new connections accepted while draining")
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request: %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Reload(nil); err == nil {
		t.Error("Reload after shutdown succeeded")
	}
}

func TestNewRejects(t *testing.T) {
	c := newTestCert(t, "a.test")
	root := staticSite(t)
	tests := map[string][]Site{
		"no names":        {{Root: root, Cert: c.source()}},
		"no cert":         {{Names: []string{"a.test"}, Root: root}},
		"two handlers":    {{Names: []string{"a.test"}, Root: root, Redirect: "https://x/", Cert: c.source()}},
		"duplicate name":  {{Names: []string{"a.test"}, Cert: c.source()}, {Names: []string{"A.test."}, Cert: c.source()}},
		"two defaults":    {{Names: []string{"a.test"}, Default: true, Cert: c.source()}, {Names: []string{"b.test"}, Default: true, Cert: c.source()}},
		"missing root":    {{Names: []string{"a.test"}, Root: root + "/nope", Cert: c.source()}},
		"bad upstream":    {{Names: []string{"a.test"}, Proxy: []string{"ftp://x"}, Cert: c.source()}},
		"mixed paths":     {{Names: []string{"a.test"}, Proxy: []string{"http://x/a", "http://y/b"}, Cert: c.source()}},
		"bad route":       {{Names: []string{"a.test"}, Routes: []Route{{Path: "api", Root: root}}, Cert: c.source()}},
		"empty route":     {{Names: []string{"a.test"}, Routes: []Route{{Path: "/api"}}, Cert: c.source()}},
		"missing key":     {{Names: []string{"a.test"}, Cert: CertSource{CertFile: c.certFile}}},
		"mismatched pair": {{Names: []string{"a.test"}, Cert: CertSource{CertFile: c.certFile, KeyFile: newTestCert(t, "x").keyFile}}},
		"bad header":      {{Names: []string{"a.test"}, Headers: map[string]string{"X-A": "a\r\nb"}, Cert: c.source()}},
		"bad name":        {{Names: []string{"a..test"}, Cert: c.source()}},
	}
	for name, sites := range tests {
		_, err := New(Options{HTTPSListener: listen(t), Sites: sites})
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "site ") {
			t.Errorf("%s: %v does not name the site", name, err)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without listeners succeeded")
	}
}

// TestIPSite serves a site named by an IP address to clients without SNI.
func TestIPSite(t *testing.T) {
	c := newTestCert(t, "127.0.0.1")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"127.0.0.1"}, Root: staticSite(t), Cert: c.source()}}}, c)
	cl := ts.client(t, true)
	if resp, body := get(t, cl, "https://127.0.0.1/hello.txt"); resp.StatusCode != 200 || body != "hello, world\n" {
		t.Errorf("IP site: %d %q", resp.StatusCode, body)
	}
}
