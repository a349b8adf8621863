package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"syscall"
	"time"
)

// upstreamTransport is the proxy's transport to plain-HTTP upstreams for
// requests whose body, if any, is already in memory (bufferBody): an
// HTTP/1.1 exchange per request on a pooled keep-alive connection, done
// entirely on the calling goroutine. The request is written with
// net/http's Request.Write and the response parsed with http.ReadResponse,
// so the wire format is net/http's; what differs from http.Transport is
// that no reader and writer goroutines stand between the handler and the
// socket (http.Transport hands every request and response between three
// goroutines). Other requests, and https upstreams, go to fallback.
//
// A connection goes back to the pool when its response body was read to
// the end and neither side asked to close; a body closed early closes the
// connection, as http.Transport does. Before a pooled connection is used
// it is checked, without blocking, for an upstream that closed it while
// it was idle; a replayable request (isReplayable) that still finds its
// reused connection dead before any response byte is sent once more on a
// new one.
type upstreamTransport struct {
	dialer      net.Dialer
	fallback    http.RoundTripper
	maxIdle     int           // idle connections kept per upstream host
	idleTimeout time.Duration // an idle connection older than this is closed

	mu      sync.Mutex
	idle    map[string][]*upstreamConn // host:port → idle connections, newest last
	pruning bool                       // a prune is scheduled
	closed  bool                       // Close was called: keep nothing idle
}

// upstreamConn is one keep-alive connection to an upstream.
type upstreamConn struct {
	t      *upstreamTransport
	host   string
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

func newUpstreamTransport(fallback http.RoundTripper) *upstreamTransport {
	return &upstreamTransport{
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		fallback:    fallback,
		maxIdle:     maxIdlePerHost,
		idleTimeout: idleConnTimeout,
		idle:        make(map[string][]*upstreamConn),
	}
}

// RoundTrip implements http.RoundTripper.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.ContentLength < 0 || req.ContentLength > bodyBufferSize {
		// TLS, or a body that streams on from the client (see
		// bufferBody): http.Transport writes it while it reads the
		// answer, so an upstream that answers before it has read the
		// whole body is still heard.
		return t.fallback.RoundTrip(req)
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	replayable := isReplayable(req)
	for {
		c, reused, err := t.get(req.Context(), host)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(req)
		if err == nil {
			return resp, nil
		}
		if reused && replayable && req.Context().Err() == nil && isDeadConn(err) {
			continue // the upstream closed it while idle; nothing was answered
		}
		return nil, err
	}
}

// isReplayable reports whether req may be sent again after its
// connection died without an answer: it has no body and its method is
// one net/http's Transport also replays (safe methods, RFC 9110 §9.2.1),
// or it carries an idempotency key.
func isReplayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// isDeadConn reports whether err means the connection was gone before
// the upstream answered anything: writing the request failed as the
// connection was reset, or it ended before the answer's first byte.
func isDeadConn(err error) bool {
	var dead *deadConnError
	if errors.As(err, &dead) {
		return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// deadConnError is a failure to read the first byte of an answer.
type deadConnError struct{ err error }

func (e *deadConnError) Error() string { return "upstream answered nothing: " + e.err.Error() }
func (e *deadConnError) Unwrap() error { return e.err }

// get returns an idle connection to host that still looks alive, or a new
// one.
func (t *upstreamTransport) get(ctx context.Context, host string) (c *upstreamConn, reused bool, err error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[host]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[host] = list[:len(list)-1]
		t.mu.Unlock()
		if now.Sub(c.idleAt) < t.idleTimeout && connAlive(c.conn) {
			return c, true, nil
		}
		c.conn.Close()
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &upstreamConn{t: t, host: host, conn: conn,
		br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}, false, nil
}

// put returns c to the idle pool, or closes it if the pool is full.
func (t *upstreamTransport) put(c *upstreamConn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	list := t.idle[c.host]
	if len(list) >= t.maxIdle || t.closed {
		t.mu.Unlock()
		c.conn.Close()
		return
	}
	t.idle[c.host] = append(list, c)
	schedule := !t.pruning
	t.pruning = true
	t.mu.Unlock()
	if schedule {
		time.AfterFunc(t.idleTimeout, t.prune)
	}
}

// prune closes connections idle for longer than idleTimeout, and comes
// back while any are left.
func (t *upstreamTransport) prune() {
	cutoff := time.Now().Add(-t.idleTimeout)
	var old []*upstreamConn
	t.mu.Lock()
	left := 0
	for host, list := range t.idle {
		i := 0
		for i < len(list) && !list[i].idleAt.After(cutoff) {
			i++
		}
		old = append(old, list[:i]...)
		if i == len(list) {
			delete(t.idle, host)
			continue
		}
		t.idle[host] = append(list[:0:0], list[i:]...)
		left += len(list) - i
	}
	t.pruning = left > 0
	t.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
	if left > 0 {
		time.AfterFunc(t.idleTimeout/2, t.prune)
	}
}

// Close closes every idle connection, and the fallback's; a connection
// that becomes idle afterwards is closed at once. Exchanges under way are
// left to end.
func (t *upstreamTransport) Close() {
	t.mu.Lock()
	t.closed = true
	idle := t.idle
	t.idle = make(map[string][]*upstreamConn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.conn.Close()
		}
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// exchange writes req and reads the response head. The request's context
// ending breaks the exchange off at once (the connection's deadline is
// moved to the past), and so does responseHeaderTimeout passing before
// the response head arrives.
func (c *upstreamConn) exchange(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.conn.Close()
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(responseHeaderTimeout))
	if _, err := c.br.Peek(1); err != nil {
		// Not a byte of an answer: if the connection was reused, the
		// upstream may have closed it just before the request came.
		return fail(&deadConnError{err})
	}
	var resp *http.Response
	for interim := 0; ; interim++ {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if interim == maxInterim {
			return fail(fmt.Errorf("upstream sent more than %d interim (1xx) answers", maxInterim))
		}
		// An interim response: 100 Continue is ours to take (the body is
		// already sent); others, such as 103 Early Hints, go to the client.
		if resp.StatusCode != http.StatusContinue {
			if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					return fail(err)
				}
			}
		}
	}
	c.conn.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		c.conn.SetDeadline(aLongTimeAgo) // it ended as the deadline was cleared: break off again
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the upgraded protocol; ReverseProxy
		// copies both ways through the body and watches the context itself.
		stop()
		resp.Body = &upgradedBody{br: c.br, conn: c.conn}
		return resp, nil
	}
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		if !stop() || !reuse {
			c.conn.Close()
		} else {
			c.t.put(c)
		}
		return resp, nil
	}
	resp.Body = &upstreamBody{c: c, body: resp.Body, stop: stop, reuse: reuse}
	return resp, nil
}

// upstreamBody is a response body that hands its connection back to the
// pool once read to the end, or closes it.
type upstreamBody struct {
	c     *upstreamConn
	body  io.ReadCloser
	stop  func() bool
	reuse bool
	done  bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.done = true
		if b.stop() && b.reuse && b.c.br.Buffered() == 0 {
			b.c.t.put(b.c)
		} else {
			b.c.conn.Close()
		}
	} else if err != nil {
		b.done = true
		b.stop()
		b.c.conn.Close()
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.c.conn.Close()
	}
	return nil
}

// upgradedBody is the body of a 101 answer: the connection itself, with
// what was read ahead of it.
type upgradedBody struct {
	br   *bufio.Reader
	conn net.Conn
}

func (b *upgradedBody) Read(p []byte) (int, error)  { return b.br.Read(p) }
func (b *upgradedBody) Write(p []byte) (int, error) { return b.conn.Write(p) }
func (b *upgradedBody) Close() error                { return b.conn.Close() }

// maxInterim is how many interim answers (1xx, RFC 9110 §15.2) one request
// may get before the final one; net/http's Transport allows 5.
const maxInterim = 5

// aLongTimeAgo is a deadline that has passed: setting it breaks off
// pending reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)
