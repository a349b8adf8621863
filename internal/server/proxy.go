package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream connection limits. One Transport is shared by every proxy of
// a Server, so idle keep-alive connections are reused across reloads.
const (
	dialTimeout           = 10 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxIdlePerHost        = 256
	downFor               = 10 * time.Second // an upstream that refused a connection is skipped this long
)

func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true, // pass the client's Accept-Encoding through untouched
	}
}

// proxyEnv is what every proxy of a Server shares.
type proxyEnv struct {
	transport http.RoundTripper
	bufs      *bufferPool
	log       *slog.Logger
	errLog    *log.Logger
}

// proxy forwards to a set of upstreams round-robin. An upstream that
// refuses a connection is skipped for a while (passive health), and a
// request without a body is tried on the next upstream at once: it was
// never sent.
type proxy struct {
	rp   httputil.ReverseProxy
	ups  []*upstream
	next atomic.Uint32
	tr   http.RoundTripper
	keys []string // headers the site sets; the upstream's give way
	log  *slog.Logger
}

type upstream struct {
	url       *url.URL
	downUntil atomic.Int64 // unix nanoseconds
}

func newProxy(targets []string, keys []string, env *proxyEnv) (*proxy, error) {
	p := &proxy{tr: env.transport, keys: keys, log: env.log}
	for _, t := range targets {
		u, err := parseUpstream(t)
		if err != nil {
			return nil, err
		}
		if len(p.ups) > 0 && u.Path != p.ups[0].url.Path {
			return nil, fmt.Errorf("proxy %s: all upstreams of one handler must have the same path", t)
		}
		p.ups = append(p.ups, &upstream{url: u})
	}
	p.rp = httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p,
		BufferPool:     env.bufs,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.fail,
		ErrorLog:       env.errLog,
	}
	return p, nil
}

func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("proxy %q: want http:// or https:// and a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy %q: no query or fragment allowed", s)
	}
	return u, nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// rewrite sends the request to the next upstream with the client's Host
// and X-Forwarded-For/-Host/-Proto set by us (inbound ones are dropped
// by ReverseProxy before Rewrite runs).
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.pick().url)
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

// pick returns the next upstream round-robin, skipping those marked
// down unless all are.
func (p *proxy) pick() *upstream {
	if len(p.ups) == 1 {
		return p.ups[0]
	}
	if u := p.pickHealthy(); u != nil {
		return u
	}
	return p.ups[int(p.next.Add(1))%len(p.ups)]
}

func (p *proxy) pickHealthy() *upstream {
	n := len(p.ups)
	start := int(p.next.Add(1))
	var now int64
	for i := range n {
		u := p.ups[(start+i)%n]
		d := u.downUntil.Load()
		if d == 0 {
			return u
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if d <= now {
			return u
		}
	}
	return nil
}

func (p *proxy) markDown(host string) {
	for _, u := range p.ups {
		if u.url.Host == host {
			u.downUntil.Store(time.Now().Add(downFor).UnixNano())
		}
	}
}

// RoundTrip is the proxy's transport: the shared one, plus failover of
// requests that never reached an upstream.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.tr.RoundTrip(req)
	if err == nil || !isDialError(err) {
		return resp, err
	}
	p.markDown(req.URL.Host)
	if req.Body != nil && req.Body != http.NoBody {
		return nil, err
	}
	for range len(p.ups) - 1 {
		u := p.pickHealthy()
		if u == nil {
			break
		}
		r2 := req.Clone(req.Context())
		r2.URL.Scheme, r2.URL.Host = u.url.Scheme, u.url.Host
		resp, err = p.tr.RoundTrip(r2)
		if err == nil || !isDialError(err) {
			return resp, err
		}
		p.markDown(u.url.Host)
	}
	return nil, err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (p *proxy) modifyResponse(resp *http.Response) error {
	for _, k := range p.keys {
		delete(resp.Header, k)
	}
	return nil
}

// fail answers 502, or 504 when the upstream timed out.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		p.log.Debug("proxy: client went away", "upstream", r.URL.Host, "path", r.URL.Path)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		code = http.StatusGatewayTimeout
		p.log.Warn("proxy: upstream timed out", "upstream", r.URL.Host, "path", r.URL.Path, "error", err)
	default:
		p.log.Warn("proxy: upstream failed", "upstream", r.URL.Host, "path", r.URL.Path, "error", err)
	}
	http.Error(w, http.StatusText(code), code)
}

// bufSize is the copy buffer for proxied bodies and for file bodies on
// connections that cannot sendfile.
const bufSize = 32 << 10

// bufferPool recycles copy buffers. It stores array pointers so that
// Get and Put do not allocate.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([bufSize]byte) }}}
}

// Get returns a buffer of bufSize bytes.
func (b *bufferPool) Get() []byte { return b.p.Get().(*[bufSize]byte)[:] }

// Put returns a buffer obtained from Get.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufSize {
		b.p.Put((*[bufSize]byte)(buf[:bufSize]))
	}
}

var (
	_ httputil.BufferPool = (*bufferPool)(nil)
	_ http.RoundTripper   = (*proxy)(nil)
	_ http.Handler        = (*proxy)(nil)
)
