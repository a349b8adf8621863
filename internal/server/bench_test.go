package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that drops the body, so handler
// benchmarks count the handler's allocations and not a recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// benchServer is a Server whose HTTPS handler is called directly.
func benchServer(b *testing.B, sites ...Site) http.Handler {
	b.Helper()
	s, err := New(Options{HTTPSListener: listen(b), Sites: sites})
	if err != nil {
		b.Fatal(err)
	}
	return s.https.Handler
}

func benchRequest(host, path string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	r.RequestURI = path
	r.TLS = &tls.ConnectionState{ServerName: host, HandshakeComplete: true}
	return r
}

func serveLoop(b *testing.B, h http.Handler, r *http.Request, want int) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
	}
	if w.code != want {
		b.Fatalf("status %d, want %d", w.code, want)
	}
}

// BenchmarkStaticSmall serves a 1 KiB file through the whole HTTPS
// handler: site lookup, security headers, access-log writer, os.Root,
// http.ServeContent.
func BenchmarkStaticSmall(b *testing.B) {
	root := filepath.Join(b.TempDir(), "www")
	writeFile(b, filepath.Join(root, "small.txt"), strings.Repeat("x", 1024))
	c := newTestCert(b, "a.test")
	h := benchServer(b, Site{Names: []string{"a.test"}, Root: root, HSTS: true, Cert: c.source()})
	serveLoop(b, h, benchRequest("a.test", "/small.txt"), http.StatusOK)
}

// BenchmarkStaticNested is BenchmarkStaticSmall for a file three
// directories down, as a site's assets usually are.
func BenchmarkStaticNested(b *testing.B) {
	root := filepath.Join(b.TempDir(), "www")
	writeFile(b, filepath.Join(root, "assets", "css", "v2", "site.css"), strings.Repeat("x", 1024))
	c := newTestCert(b, "a.test")
	h := benchServer(b, Site{Names: []string{"a.test"}, Root: root, HSTS: true, Cert: c.source()})
	serveLoop(b, h, benchRequest("a.test", "/assets/css/v2/site.css"), http.StatusOK)
}

// BenchmarkProxy proxies to an upstream on loopback over a kept-alive
// connection. Allocations include the in-process upstream's.
func BenchmarkProxy(b *testing.B) {
	up := startUpstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	c := newTestCert(b, "a.test")
	h := benchServer(b, Site{Names: []string{"a.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()})
	r := benchRequest("a.test", "/proxy/")
	r.RemoteAddr = "127.0.0.1:5555"
	serveLoop(b, h, r, http.StatusOK)
}

// BenchmarkChallenge answers an http-01 request over HTTPS for a proxy
// site: the ACME hook answers, the upstream is never asked.
func BenchmarkChallenge(b *testing.B) {
	c := newTestCert(b, "a.test")
	s, err := New(Options{HTTPSListener: listen(b), ACMEHTTP: challengeHook(map[string]string{"tok": "tok.thumbprint"}),
		Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://127.0.0.1:9"}, Cert: c.source()}}})
	if err != nil {
		b.Fatal(err)
	}
	serveLoop(b, s.https.Handler, benchRequest("a.test", challengePath+"tok"), http.StatusOK)
}

// BenchmarkGetCertificate is the handshake's site selection.
func BenchmarkGetCertificate(b *testing.B) {
	c := newTestCert(b, "a.test")
	s, err := New(Options{HTTPSListener: listen(b), Sites: []Site{
		{Names: []string{"a.test"}, Cert: c.files()},
		{Names: []string{"*.b.test"}, Cert: c.source()},
	}})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"a.test", "www.b.test"} {
		b.Run(name, func(b *testing.B) {
			hello := &tls.ClientHelloInfo{ServerName: name, SupportedProtos: []string{"h2", "http/1.1"}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.configForClient(hello); err != nil {
					b.Fatal(err)
				}
				if _, err := s.getCertificate(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStaticSmallHTTP1 is the same file over real HTTPS keep-alive
// connections on loopback (client allocations included).
func BenchmarkStaticSmallHTTP1(b *testing.B) { benchStaticOverTLS(b, false) }

// BenchmarkStaticSmallHTTP2 is BenchmarkStaticSmallHTTP1 over one HTTP/2
// connection with concurrent streams.
func BenchmarkStaticSmallHTTP2(b *testing.B) { benchStaticOverTLS(b, true) }

func benchStaticOverTLS(b *testing.B, h2 bool) {
	root := filepath.Join(b.TempDir(), "www")
	writeFile(b, filepath.Join(root, "small.txt"), strings.Repeat("x", 1024))
	c := newTestCert(b, "a.test")
	ts := startServer(b, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	cl := ts.client(b, h2)
	cl.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	if h2 {
		b.SetParallelism(8) // 16 streams on 2 cores
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := cl.Get("https://a.test/small.txt")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
