package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"
)

// upstreamTransport is the proxy's transport to plain-HTTP upstreams for
// requests whose body, if any, is already in memory (bufferBody): an
// HTTP/1.1 exchange per request on a pooled keep-alive connection, done
// on the calling goroutine (a request body is written from one more, so
// that an answer sent before the body is read is heard). The request is
// written with net/http's Request.Write and the response parsed with
// http.ReadResponse, so the wire format is net/http's; what differs from
// http.Transport is that no reader and writer goroutines stand between
// the handler and the socket (http.Transport hands every request and
// response between three goroutines). Other requests, and https
// upstreams, go to fallback.
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
	pruneEvery  time.Duration // how often idle connections are checked

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
	head   *io.LimitedReader // conn, limited while a response head is read
	br     *bufio.Reader     // reads head
	bw     *bufio.Writer
	idleAt time.Time
}

// newUpstreamTransport returns a transport that sends what it does not
// take itself to fallback. An *http.Transport fallback without its own
// MaxResponseHeaderBytes gets maxResponseHead, so that an answer head
// is bounded the same on both ways (its default is 10 MiB).
func newUpstreamTransport(fallback http.RoundTripper) *upstreamTransport {
	if ht, ok := fallback.(*http.Transport); ok && ht.MaxResponseHeaderBytes == 0 {
		ht.MaxResponseHeaderBytes = maxResponseHead
	}
	return &upstreamTransport{
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		fallback:    fallback,
		maxIdle:     maxIdlePerHost,
		idleTimeout: idleConnTimeout,
		pruneEvery:  idlePruneEvery,
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
		return t.fallback.RoundTrip(withInterimFilter(req))
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
	head := &io.LimitedReader{R: conn, N: math.MaxInt64}
	return &upstreamConn{t: t, host: host, conn: conn, head: head,
		br: bufio.NewReaderSize(head, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}, false, nil
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
		time.AfterFunc(t.pruneEvery, t.prune)
	}
}

// prune closes connections idle for longer than idleTimeout, and those
// the upstream closed (or wrote to unasked) while they were idle, so they
// do not sit half-closed holding a file descriptor; it comes back every
// pruneEvery while any are left.
func (t *upstreamTransport) prune() {
	cutoff := time.Now().Add(-t.idleTimeout)
	var gone []*upstreamConn
	t.mu.Lock()
	left := 0
	for host, list := range t.idle {
		keep := list[:0]
		for _, c := range list {
			if c.idleAt.After(cutoff) && connAlive(c.conn) {
				keep = append(keep, c)
			} else {
				gone = append(gone, c)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, host)
			continue
		}
		t.idle[host] = keep
		left += len(keep)
	}
	t.pruning = left > 0
	t.mu.Unlock()
	for _, c := range gone {
		c.conn.Close()
	}
	if left > 0 {
		time.AfterFunc(t.pruneEvery, t.prune)
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
// the response head arrives. A request body is written on a goroutine of
// its own while the answer is awaited, so an upstream that answers before
// it has read the whole body (413, 401) is heard, as with http.Transport;
// its connection is then not reused.
func (c *upstreamConn) exchange(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.conn.Close()
		return nil, err
	}
	var written chan error // the body's writer, if it has one
	if req.Body != nil && req.Body != http.NoBody {
		written = make(chan error, 1)
		go func() { written <- c.write(req) }()
	} else if err := c.write(req); err != nil {
		return fail(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(responseHeaderTimeout))
	if ctx.Err() != nil {
		c.conn.SetDeadline(aLongTimeAgo) // it ended as the deadline was set: break off again
	}
	if _, err := c.br.Peek(1); err != nil {
		// Not a byte of an answer: if the connection was reused, the
		// upstream may have closed it just before the request came.
		return fail(&deadConnError{err})
	}
	resp, err := c.readHead(req)
	if err != nil {
		return fail(err)
	}
	c.head.N = math.MaxInt64
	c.conn.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		c.conn.SetDeadline(aLongTimeAgo) // it ended as the deadline was cleared: break off again
	}
	reuse := !resp.Close && !req.Close
	if written != nil {
		select {
		case err := <-written:
			reuse = reuse && err == nil
		default:
			reuse = false // answered before the whole body was sent
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Only the protocol the client asked for (RFC 9110 §7.8): any
		// other switch, or one nobody asked for, would hand the client a
		// raw tunnel to the upstream, past every header we set.
		asked, got := req.Header.Get("Upgrade"), resp.Header.Get("Upgrade")
		if asked == "" || !strings.EqualFold(asked, got) {
			return fail(fmt.Errorf("upstream switched protocols to %q when %q was asked for", got, asked))
		}
		if written != nil && !reuse {
			return fail(errors.New("upstream switched protocols before reading the request body"))
		}
		// The connection now belongs to the upgraded protocol; ReverseProxy
		// copies both ways through the body and watches the context itself.
		stop()
		resp.Body = &upgradedBody{br: c.br, conn: c.conn}
		return resp, nil
	}
	if resp.Body == http.NoBody {
		c.release(stop, reuse)
		return resp, nil
	}
	resp.Body = &upstreamBody{c: c, body: resp.Body, stop: stop, reuse: reuse}
	return resp, nil
}

// write sends req and flushes it.
func (c *upstreamConn) write(req *http.Request) error {
	if err := req.Write(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// readHead reads interim answers, passing them to the client through the
// request's client trace (a proxy forwards them, RFC 9110 §15.2), until
// the final answer's head, which it returns. The interim heads and the
// final one together may take maxResponseHead bytes.
func (c *upstreamConn) readHead(req *http.Request) (*http.Response, error) {
	c.head.N = maxResponseHead
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.head.N <= 0 {
				return nil, fmt.Errorf("upstream's response head is over %d bytes", maxResponseHead)
			}
			return nil, err
		}
		if resp.StatusCode < 100 {
			// Three digits, as ReadResponse wants, but no status: taken
			// for an interim answer, it made WriteHeader panic.
			return nil, fmt.Errorf("upstream answered with status %03d", resp.StatusCode)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		// 100 Continue is ours to take (the body is sent anyway); others,
		// such as 103 Early Hints, go to the client, without their
		// hop-by-hop fields.
		if resp.StatusCode != http.StatusContinue {
			removeHopByHop(resp.Header)
			if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					return nil, err
				}
			}
		}
	}
}

// release hands c back to the pool if its exchange ended cleanly (stop
// reports that the request's context did not break it off, reuse that
// neither side asked to close) and nothing beyond the answer was read;
// otherwise it closes c. Bytes after an answer, such as a body sent with a
// HEAD answer or a 204, would be taken for the next request's answer.
func (c *upstreamConn) release(stop func() bool, reuse bool) {
	if stop() && reuse && c.br.Buffered() == 0 {
		c.t.put(c)
	} else {
		c.conn.Close()
	}
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
		b.c.release(b.stop, b.reuse)
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

// idlePruneEvery is how often pooled upstream connections are checked for
// an upstream that closed them (Node's keep-alive is 5 s, nginx's 60 s):
// http.Transport notices at once, with a reader goroutine per connection.
const idlePruneEvery = 5 * time.Second

// maxResponseHead bounds the size of an upstream's answer head (status
// line and header fields), interim (1xx) heads before it included; a
// larger one is refused with 502. net/http's Transport allows 10 MiB per
// head, nginx 4 or 8 KiB (proxy_buffer_size).
const maxResponseHead = 1 << 20

// aLongTimeAgo is a deadline that has passed: setting it breaks off
// pending reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)
