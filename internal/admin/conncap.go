package admin

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connCap keeps at most max connections of a listener open. Past the
// cap it accepts one more connection and, to make room for it, closes
// the connection idle the longest: one between requests (keep-alive),
// or one that has sent nothing for newGrace since it was accepted. With
// none idle it holds that connection until a place frees and accepts no
// other, so that further clients wait in the listen backlog, which costs
// the process no file descriptor. Without the reclaim, max idle
// keep-alive connections (a client that opens many and keeps them, or
// the sockets a browser pools) would lock every scraper out for the
// server's IdleTimeout, and again whenever they are reopened.
type connCap struct {
	net.Listener
	max     int
	changed chan struct{} // a connection closed or went idle
	done    chan struct{} // closed by Close
	once    sync.Once

	mu    sync.Mutex
	conns map[*capConn]connSlot // the open connections
}

// connSlot is what connCap knows of one open connection: its state
// (http.StateNew until its first request, then as ConnState reports it)
// and since when.
type connSlot struct {
	state http.ConnState
	since time.Time
}

// newGrace is how long a connection that has sent nothing yet is spared
// by the reclaim: a client sends its request at once after connecting.
const newGrace = time.Second

func newConnCap(l net.Listener, max int) *connCap {
	return &connCap{Listener: l, max: max, changed: make(chan struct{}, 1), done: make(chan struct{}),
		conns: make(map[*capConn]connSlot)}
}

// Accept returns the next connection, once it has a place within the
// cap.
func (l *connCap) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &capConn{Conn: c, l: l}
	if err := l.place(cc); err != nil {
		_ = c.Close()
		return nil, err
	}
	return cc, nil
}

// place counts c among the open connections, closing an idle one or
// waiting for one to close when the cap is reached.
func (l *connCap) place(c *capConn) error {
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.conns[c] = connSlot{state: http.StateNew, since: time.Now()}
			l.mu.Unlock()
			return nil
		}
		victim := l.idlestLocked(time.Now())
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			continue
		}
		select {
		case <-l.changed:
		case <-time.After(newGrace): // a new connection may have become idle
		case <-l.done:
			return net.ErrClosed
		}
	}
}

// idlestLocked returns the connection idle the longest, or nil when none
// is.
func (l *connCap) idlestLocked(now time.Time) *capConn {
	var victim *capConn
	var since time.Time
	for c, s := range l.conns {
		idle := s.state == http.StateIdle || s.state == http.StateNew && now.Sub(s.since) >= newGrace
		if idle && (victim == nil || s.since.Before(since)) {
			victim, since = c, s.since
		}
	}
	return victim
}

// connState is the server's ConnState hook: it records which
// connections are between requests.
func (l *connCap) connState(c net.Conn, st http.ConnState) {
	cc, ok := c.(*capConn)
	if !ok || st != http.StateActive && st != http.StateIdle && st != http.StateHijacked {
		return // StateClosed: capConn.Close forgets it
	}
	l.mu.Lock()
	if _, open := l.conns[cc]; open {
		l.conns[cc] = connSlot{state: st, since: time.Now()}
	}
	l.mu.Unlock()
	if st == http.StateIdle {
		l.signal()
	}
}

// signal wakes a place waiting for room.
func (l *connCap) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Close closes the listener and ends a wait for room.
func (l *connCap) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// capConn gives its place back when closed.
type capConn struct {
	net.Conn
	l    *connCap
	once sync.Once
}

// Close closes the connection and frees its place.
func (c *capConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.signal()
	})
	return c.Conn.Close()
}
