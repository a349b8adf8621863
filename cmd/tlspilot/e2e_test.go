package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// buildBinary builds the tlspilot command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tlspilot-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tlspilot")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// env is one end-to-end set-up: a Pebble process, an upstream, a site root
// and a config for the built binary.
type env struct {
	t        *testing.T
	p        *testenv.Pebble
	dir      string
	conf     string
	roots    *x509.CertPool // Pebble's issuing root
	upstream string
	https    string // 127.0.0.1:port
	http     string
	admin    string // admin_listen, a free 127.0.0.1 port
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, testenv.PebbleOptions{})
}

func newEnvWith(t *testing.T, opts testenv.PebbleOptions) *env {
	t.Helper()
	p := testenv.StartPebbleProcess(t, opts)
	e := &env{t: t, p: p, dir: t.TempDir(), roots: p.IssuerRoots(t)}
	e.https = "127.0.0.1:" + strconv.Itoa(p.TLSPort)
	e.http = "127.0.0.1:" + strconv.Itoa(p.HTTPPort)
	e.admin = freeAddr(t)
	write(t, filepath.Join(e.dir, "api-root.pem"), string(p.RootsPEM))
	write(t, filepath.Join(e.dir, "www", "index.html"), "<h1>static site</h1>\n")
	write(t, filepath.Join(e.dir, "secret.txt"), "outside the root\n")
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s %s xff=%s proto=%s host=%s", r.Method, r.URL.Path,
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = up.Serve(l) }()
	t.Cleanup(func() { _ = up.Close() })
	e.upstream = "http://" + l.Addr().String()
	return e
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// config writes the config file with the given [[site]] tables.
func (e *env) config(sites string) string {
	head := fmt.Sprintf(`ca = %q
ca_root = %q
agree_terms = true
email = "ops@example.test"
storage = %q
http_listen = %q
https_listen = %q
admin_listen = %q
access_log = "off"
`, e.p.DirectoryURL, filepath.Join(e.dir, "api-root.pem"), filepath.Join(e.dir, "storage"), e.http, e.https, e.admin)
	e.conf = filepath.Join(e.dir, "tlspilot.toml")
	write(e.t, e.conf, head+sites)
	return e.conf
}

// serve starts `tlspilot serve` and stops it at cleanup.
func (e *env) serve() *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(buildBinary(e.t), "serve", "--config", e.conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			e.t.Logf("tlspilot output:\n%s", out.String())
		}
	})
	return cmd
}

// client returns an HTTPS client that trusts only Pebble's root and
// connects every name to the server.
func (e *env) client() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: e.roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if strings.HasSuffix(addr, ":443") {
					addr = e.https
				} else if strings.HasSuffix(addr, ":80") {
					addr = e.http
				}
				return d.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// waitIssued waits until name is served with a certificate from Pebble.
func (e *env) waitIssued(name string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		var c *tls.Conn
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", e.https, &tls.Config{ServerName: name, RootCAs: e.roots})
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("%s not served with a Pebble certificate within %v: %v", name, timeout, err)
}

func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestServeEndToEnd: the built binary serves a static site, a proxied
// site and a redirect with certificates it obtained from a Pebble process.
func TestServeEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.config(fmt.Sprintf(`
[[site]]
names = ["static.example.test", "www.static.example.test"]
root = %q
hsts = true

[[site]]
names = ["proxy.example.test"]
proxy = %q

[[site]]
names = ["old.example.test"]
redirect = "https://static.example.test{uri}"
`, filepath.Join(e.dir, "www"), e.upstream))
	e.serve()
	for _, n := range []string{"static.example.test", "www.static.example.test", "proxy.example.test", "old.example.test"} {
		e.waitIssued(n, 60*time.Second)
	}
	c := e.client()
	code, body, h := get(t, c, "https://static.example.test/")
	if code != 200 || !strings.Contains(body, "static site") || h.Get("Strict-Transport-Security") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("static: %d %q %v", code, body, h)
	}
	code, body, _ = get(t, c, "https://proxy.example.test/api/x")
	if code != 200 || !strings.Contains(body, "upstream saw GET /api/x xff=127.0.0.1 proto=https host=proxy.example.test") {
		t.Errorf("proxy: %d %q", code, body)
	}
	code, _, h = get(t, c, "https://old.example.test/a/b?c=d")
	if code/100 != 3 || h.Get("Location") != "https://static.example.test/a/b?c=d" {
		t.Errorf("redirect: %d %q", code, h.Get("Location"))
	}
	code, _, h = get(t, c, "http://static.example.test/x")
	if code/100 != 3 || !strings.HasPrefix(h.Get("Location"), "https://static.example.test") {
		t.Errorf("port 80 redirect: %d %q", code, h.Get("Location"))
	}
	for _, bad := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"} {
		if _, body, _ := get(t, c, "https://static.example.test"+bad); strings.Contains(body, "outside the root") {
			t.Errorf("%s escaped the root", bad)
		}
	}
	// An unknown name gets a handshake failure, not another site's certificate.
	if c, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "unknown.example.test", InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("a handshake for an unknown name succeeded")
	}
	// curl, trusting only Pebble's root.
	rootPEM := filepath.Join(e.dir, "issuer-root.pem")
	write(t, rootPEM, string(issuerPEM(t, e)))
	out, err := exec.Command("curl", "-sS", "--http2", "--resolve", "static.example.test:"+strconv.Itoa(e.p.TLSPort)+":127.0.0.1",
		"--cacert", rootPEM, "https://static.example.test:"+strconv.Itoa(e.p.TLSPort)+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "static site") {
		t.Errorf("curl: %v\n%s", err, out)
	}
	if got := e.p.Orders(); got != 3 {
		t.Errorf("orders = %d, want 3", got)
	}
}

func issuerPEM(t *testing.T, e *env) []byte {
	t.Helper()
	return e.p.IssuerRootsPEM(t)
}
