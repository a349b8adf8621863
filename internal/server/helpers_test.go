package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed certificate for some names.
type testCert struct {
	tls      tls.Certificate
	leaf     *x509.Certificate
	certFile string
	keyFile  string
}

func newTestCert(t testing.TB, names ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	c := &testCert{
		tls:      tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf:     leaf,
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	writeFile(t, c.certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, c.keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return c
}

// source serves the certificate the way the ACME Manager does: through
// a GetCertificate function.
func (c *testCert) source() CertSource {
	return CertSource{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c.tls, nil }}
}

func (c *testCert) files() CertSource { return CertSource{CertFile: c.certFile, KeyFile: c.keyFile} }

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testServer is a Server on loopback listeners, stopped at cleanup.
type testServer struct {
	*Server
	httpAddr, httpsAddr string
	roots               *x509.CertPool
}

// startServer binds both listeners, builds a Server from opts and serves
// until the test ends; certs are the certificates clients trust.
func startServer(t testing.TB, opts Options, certs ...*testCert) *testServer {
	t.Helper()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.HTTPListener, opts.HTTPSListener = hl, tl
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	s, err := New(opts)
	if err != nil {
		hl.Close()
		tl.Close()
		t.Fatal(err)
	}
	serveUntilCleanup(t, s)
	ts := &testServer{Server: s, httpAddr: hl.Addr().String(), httpsAddr: tl.Addr().String(), roots: x509.NewCertPool()}
	for _, c := range certs {
		ts.roots.AddCert(c.leaf)
	}
	return ts
}

// client returns an HTTPS client that dials the server whatever the URL
// says, so URLs can carry the site's name. h2 enables HTTP/2.
func (ts *testServer) client(t testing.TB, h2 bool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, ts.httpsAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: ts.roots},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// plainClient talks plain HTTP to the port-80 listener.
func (ts *testServer) plainClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, ts.httpAddr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// get fetches url and returns the response with its body read.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

// rawRequest sends request bytes as they are over plain TCP (or TLS with
// serverName) and returns the status line and the whole response.
func rawRequest(t testing.TB, addr, serverName string, roots *x509.CertPool, request string) (int, string) {
	t.Helper()
	var conn net.Conn
	var err error
	if serverName == "" {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	} else {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sb strings.Builder
	resp.Header.Write(&sb)
	return resp.StatusCode, sb.String() + "\r\n" + string(body)
}

// handshake dials the HTTPS listener with serverName as SNI and returns
// the leaf certificate presented, or the handshake error.
func (ts *testServer) handshake(serverName string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.httpsAddr,
		&tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// testUpstream is a plain HTTP server counting the connections it accepts.
type testUpstream struct {
	addr  string
	mu    sync.Mutex
	conns int
	idle  map[net.Conn]bool // keep-alive connections between requests
}

func startUpstream(t testing.TB, h http.Handler) *testUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &testUpstream{addr: l.Addr().String(), idle: map[net.Conn]bool{}}
	srv := &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if s == http.StateNew {
			u.conns++
		}
		if s == http.StateIdle {
			u.idle[c] = true
		} else {
			delete(u.idle, c)
		}
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *testUpstream) connCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// listen binds a loopback listener closed at cleanup.
func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func poolOf(certs ...*testCert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.leaf)
	}
	return p
}

// serveUntilCleanup runs s.Serve until the test ends, and fails the test
// if Serve returns an error then.
func serveUntilCleanup(t testing.TB, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}
