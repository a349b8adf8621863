package server

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connLimit caps the client connections of both listeners, below the
// file descriptor limit. At the cap, a new connection takes the place
// of an idle keep-alive one (as nginx reuses keep-alive connections
// when worker_connections run out); with none idle it is closed at once,
// so a flood of connections costs the flooder, not the clients already
// served. Accept errors (EMFILE, ENFILE, …) are logged at warn, at most
// once a second, and counted.
type connLimit struct {
	max       int64
	send      time.Duration // idle write deadline of every connection; 0: none
	open      atomic.Int64
	refused   atomic.Uint64
	reclaimed atomic.Uint64
	acceptErr atomic.Uint64
	warn      *rateLog

	mu    sync.Mutex
	conns map[*limitConn]struct{} // every open connection, for reclaim
}

// fdReserve is what the default connection cap leaves of the file
// descriptor limit for upstream connections, files and the rest.
const fdReserve = 128

// defaultMaxConnections derives the cap from RLIMIT_NOFILE (which Go
// raises to the hard limit at start): half of what the reserve leaves,
// since a proxied request needs an upstream connection too (nginx's
// worker_connections counts both).
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 1 << 16
	}
	return max(16, int(rl.Cur-fdReserve)/2)
}

func newConnLimit(max int, send time.Duration, log *slog.Logger) *connLimit {
	return &connLimit{max: int64(max), send: send, conns: make(map[*limitConn]struct{}),
		warn: newRateLog(log, slog.LevelWarn, time.Second)}
}

// connState is the servers' ConnState hook: it marks connections idle
// between requests. It takes no lock (it runs twice per HTTP/1 request,
// and as HTTP/2 connections go busy and idle).
func (l *connLimit) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitConn); ok && st != http.StateNew {
		lc.idle.Store(st == http.StateIdle)
	}
}

// reclaim closes one idle connection, reporting whether there was one.
// It walks the open connections, which costs only when the cap is hit.
func (l *connLimit) reclaim() bool {
	l.mu.Lock()
	var victim *limitConn
	for c := range l.conns {
		if c.idle.CompareAndSwap(true, false) {
			victim = c
			break
		}
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.Close()
	l.reclaimed.Add(1)
	return true
}

// listener wraps ln so that its connections count against the cap.
func (l *connLimit) listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, lim: l}
}

type limitListener struct {
	net.Listener
	lim *connLimit
}

// Accept returns the next connection within the cap.
func (ll *limitListener) Accept() (net.Conn, error) {
	l := ll.lim
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.acceptErr.Add(1)
				l.warn.Log("accept failed; retrying", slog.String("listener", ll.Addr().String()), slog.String("error", err.Error()))
			}
			return nil, err // net/http retries temporary errors with a back-off
		}
		if l.open.Add(1) <= l.max || l.reclaim() {
			lc := &limitConn{Conn: c, lim: l}
			l.mu.Lock()
			l.conns[lc] = struct{}{}
			l.mu.Unlock()
			return lc, nil
		}
		l.open.Add(-1)
		c.Close()
		l.refused.Add(1)
		l.warn.Log("connection refused: max_connections reached and none idle",
			slog.Int64("max_connections", l.max), slog.String("remote", c.RemoteAddr().String()))
	}
}

// limitConn gives its place back when closed, and gives every write an
// idle deadline (see armWrite). It passes ReadFrom and CloseWrite
// through, so net/http still sends files with sendfile(2).
type limitConn struct {
	net.Conn
	lim    *connLimit
	closed atomic.Bool
	idle   atomic.Bool  // between requests (connState)
	wUntil atomic.Int64 // the write deadline armed last, as monoNow; 0: none yet
	// auth is the client authentication its TLS handshake was checked
	// under (configForClient), nil for none: see siteAuth.checkedOn.
	auth atomic.Pointer[siteAuth]
}

// Write arms the idle write deadline, then writes.
func (c *limitConn) Write(p []byte) (int, error) {
	c.armWrite()
	return c.Conn.Write(p)
}

// armWrite pushes the socket's write deadline to the send timeout from
// now when less than 3/4 of it is left, so a write that makes no
// progress for the timeout fails (after between 3/4 and all of it),
// whatever wrote: a TLS handshake, an HTTP/1 response, HTTP/2 frames of
// any stream. This is nginx's send_timeout. Between re-arms a write costs
// a clock read; net/http's HTTP/2 WriteByteTimeout, which it replaces,
// set the deadline (a runtime timer update) on every write. Writes to one
// connection are serialised by crypto/tls or net/http; the atomic keeps a
// concurrent Close or reclaim safe.
func (c *limitConn) armWrite() {
	t := c.lim.send
	if t <= 0 {
		return
	}
	now := monoNow()
	if time.Duration(c.wUntil.Load()-now) > t*3/4 {
		return
	}
	c.wUntil.Store(now + int64(t))
	c.Conn.SetWriteDeadline(time.Now().Add(t))
}

// SetWriteDeadline sets the deadline and records it, so that armWrite
// knows what is armed: net/http clears the deadline as an HTTP/2
// connection starts and sets one per HTTP/1 request, crypto/tls one for
// its closing alert. A cleared deadline is armed again by the next write.
func (c *limitConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.wUntil.Store(0)
	} else {
		c.wUntil.Store(monoNow() + int64(time.Until(t)))
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline is SetWriteDeadline for both directions.
func (c *limitConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(t)
}

// monoEpoch makes monoNow monotonic: time.Since reads the monotonic clock.
var monoEpoch = time.Now()

// monoNow is nanoseconds since monoEpoch, plus one so that it is never 0.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

func (c *limitConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.lim.open.Add(-1)
		c.lim.mu.Lock()
		delete(c.lim.conns, c)
		c.lim.mu.Unlock()
	}
	return c.Conn.Close()
}

// ReadFrom arms the write deadline once per call: a sendfile(2) of one
// chunk (sendChunk) must finish within the send timeout.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	c.armWrite()
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite half-closes the connection, as net/http does before a
// lingering close.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Stats are counters of the Server's client connections and requests,
// for metrics. Every field but Open and MaxConnections only grows.
type Stats struct {
	Open           int64  // client connections open now (tlspilot_connections_open)
	MaxConnections int64  // the cap (tlspilot_connections_max)
	Refused        uint64 // closed at accept: at the cap, none idle (tlspilot_connections_refused_total)
	Reclaimed      uint64 // idle keep-alive connections closed to make room (tlspilot_connections_reclaimed_total)
	AcceptErrors   uint64 // accept(2) failures, such as EMFILE (tlspilot_accept_errors_total)
	ClientErrors   uint64 // proxied requests the client broke off, stalled or spoiled: 400, 408, 499 (tlspilot_client_errors_total)
}

// Stats returns the current counters. It is safe to call at any time
// and does not allocate.
func (s *Server) Stats() Stats {
	l := s.limit
	return Stats{
		Open: l.open.Load(), MaxConnections: l.max,
		Refused: l.refused.Load(), Reclaimed: l.reclaimed.Load(), AcceptErrors: l.acceptErr.Load(),
		ClientErrors: s.env.clientErrors.Load(),
	}
}
