package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/devca"
)

// TestServeHTTP01BehindRedirect: another server owns port 80 and answers
// every request with 301 to https://<name>:<tlspilot's HTTPS port><path>,
// as a load balancer redirecting to HTTPS does. Pebble, like Let's
// Encrypt, follows the redirect (to any port, certificate unchecked), and
// tlspilot's HTTPS listener answers the http-01 challenge, so a static
// and a proxied site get their certificates without tlspilot's own plain
// listener. The proxy's upstream never sees a challenge, and a file of
// the site under the challenge path, whose token tlspilot does not hold,
// is still served.
func TestServeHTTP01BehindRedirect(t *testing.T) {
	e := newEnv(t)
	e.http, e.https = freeAddr(t), freeAddr(t) // Pebble's HTTPPort is the redirector's
	_, httpsPort, _ := net.SplitHostPort(e.https)
	redirected := startRedirector(t, "127.0.0.1:"+strconv.Itoa(e.p.HTTPPort), httpsPort)
	up := startPathRecorder(t)
	www := filepath.Join(e.dir, "www")
	write(t, filepath.Join(www, ".well-known", "acme-challenge", "own-file"), "the site's own file\n")
	e.config(fmt.Sprintf(`
challenge = "http-01"

[[site]]
names = ["static.example.test"]
root = %q

[[site]]
names = ["proxy.example.test"]
proxy = %q
`, www, "http://"+up.addr))
	e.serve()
	e.waitIssued("static.example.test", 60*time.Second)
	e.waitIssued("proxy.example.test", 60*time.Second)

	if n := redirected.count(); n < 2 {
		t.Errorf("the redirector sent %d challenge requests to HTTPS, want at least 2", n)
	}
	if got := up.challenges(); len(got) != 0 {
		t.Errorf("the proxy forwarded challenge requests upstream: %q", got)
	}
	code, body, _ := get(t, e.client(), "https://static.example.test/.well-known/acme-challenge/own-file")
	if code != 200 || body != "the site's own file\n" {
		t.Errorf("a site file under the challenge path: %d %q", code, body)
	}
	if got := e.p.Orders(); got != 2 {
		t.Errorf("orders = %d, want 2", got)
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago, of a
// port no outgoing connection takes meanwhile (devca.FreePorts).
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := devca.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0])
}

// pathCounter counts the requests under the http-01 path it saw.
type pathCounter struct {
	addr  string
	mu    sync.Mutex
	paths []string
}

func (c *pathCounter) note(r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		c.mu.Lock()
		c.paths = append(c.paths, r.Host+r.URL.Path)
		c.mu.Unlock()
	}
}

func (c *pathCounter) challenges() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

func (c *pathCounter) count() int { return len(c.challenges()) }

// startRedirector serves addr with a plain HTTP server that answers every
// request with 301 to the same name and path over HTTPS on httpsPort.
func startRedirector(t *testing.T, addr, httpsPort string) *pathCounter {
	t.Helper()
	c := &pathCounter{}
	serveOn(t, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.note(r)
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		http.Redirect(w, r, "https://"+net.JoinHostPort(host, httpsPort)+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	return c
}

// startPathRecorder is an upstream noting challenge requests it receives.
func startPathRecorder(t *testing.T) *pathCounter {
	t.Helper()
	c := &pathCounter{}
	c.addr = serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.note(r)
		_, _ = w.Write([]byte("upstream"))
	}))
	return c
}

// serveOn serves h on addr until the test ends and returns the address.
func serveOn(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}
