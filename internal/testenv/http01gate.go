package testenv

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// HTTP01Gate stands on Pebble's http-01 port, in front of the server that
// answers challenges, and holds every validation request of Pebble's VA
// until it is opened: while it holds one, the CA is still validating and
// the challenge is processing, as at a CA whose validation takes seconds.
// Unlike Pebble's own random delay (PebbleOptions.Sleep) it lasts exactly
// as long as the test wants. Once open, it passes held and later requests
// to 127.0.0.1:BackendPort, connecting only then: the answer comes from
// whichever process serves BackendPort at that moment, for example one
// started after the process that accepted the challenge was killed.
type HTTP01Gate struct {
	// BackendPort is the port on 127.0.0.1 that the test must serve
	// http-01 answers on, instead of Pebble.HTTPPort. It was free when
	// the gate started.
	BackendPort int

	proxy    *httputil.ReverseProxy
	openOnce sync.Once
	open     chan struct{}
	heldOnce sync.Once
	held     chan struct{}
}

// GateHTTP01 starts a closed HTTP01Gate on p.HTTPPort. It is opened and
// stopped at the end of the test.
func (p *Pebble) GateHTTP01(t *testing.T) *HTTP01Gate {
	t.Helper()
	g := &HTTP01Gate{BackendPort: freePorts(t, 1)[0], open: make(chan struct{}), held: make(chan struct{})}
	backend := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(g.BackendPort))}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(backend); r.Out.Host = r.In.Host },
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	l := listenRetry(t, p.HTTPPort)
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		g.Open()
		_ = srv.Close()
	})
	return g
}

// ServeHTTP holds r until the gate is open, then passes it on.
func (g *HTTP01Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.heldOnce.Do(func() { close(g.held) })
	select {
	case <-g.open:
	case <-r.Context().Done():
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// Held is closed when the first validation request reaches the gate.
func (g *HTTP01Gate) Held() <-chan struct{} { return g.held }

// Open lets held and later requests through. It may be called more than
// once.
func (g *HTTP01Gate) Open() { g.openOnce.Do(func() { close(g.open) }) }

// listenRetry binds 127.0.0.1:port, retrying for a few seconds while an
// earlier test's listener is released.
func listenRetry(t *testing.T, port int) net.Listener {
	t.Helper()
	var err error
	for range 100 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listen on port %d: %v", port, err)
	return nil
}
