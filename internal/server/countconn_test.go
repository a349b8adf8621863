package server

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
)

// deliverConn is a net.Conn whose Write hands p to the client at once
// (deliver), then writes only the first short bytes, failing the rest.
type deliverConn struct {
	net.Conn
	deliver func(p []byte)
	short   int
}

func (c *deliverConn) Write(p []byte) (int, error) {
	c.deliver(p)
	if c.short < len(p) {
		return c.short, errors.New("connection reset")
	}
	return len(p), nil
}

// TestTunnelBytesCountedBeforeDelivery: a hijacked connection's bytes
// are counted by the time the client can have them, since the request
// may end, and be logged, as soon as the client closes after reading
// them (TestProxyWebSocketBytesLogged once logged 704 of 3,000 bytes
// echoed); bytes not written are not counted.
func TestTunnelBytesCountedBeforeDelivery(t *testing.T) {
	var n atomic.Int64
	var seen int64
	c := &countConn{n: &n}
	c.Conn = &deliverConn{deliver: func(p []byte) { seen = n.Load() }, short: 1 << 20}
	if _, err := c.Write(make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	if seen != 3000 {
		t.Errorf("the client had 3000 bytes while the count said %d", seen)
	}
	c.Conn = &deliverConn{deliver: func([]byte) {}, short: 100}
	if _, err := c.Write(make([]byte, 1000)); err == nil {
		t.Fatal("short write without error")
	}
	if got := n.Load(); got != 3100 {
		t.Errorf("after a write of 100 of 1000 bytes the count is %d, want 3100", got)
	}
}
