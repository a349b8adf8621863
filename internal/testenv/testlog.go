package testenv

import (
	"bytes"
	"sync"
	"testing"
)

// maxLogBytes bounds the log kept for one test; older output is dropped.
const maxLogBytes = 1 << 20

// testLog is an io.Writer that keeps the tail of what Pebble, its DNS server
// and the pebble process write. It is safe for concurrent use and may be
// written to after the test ended (Pebble's VA goroutines outlive it).
type testLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped bool
}

// newTestLog returns a testLog whose content is logged with t.Log at cleanup
// if t failed. Register it before anything that writes to it, so that its
// cleanup runs last.
func newTestLog(t *testing.T) *testLog {
	t.Helper()
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", l.String())
		}
	})
	return l
}

// Write implements io.Writer.
func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len()+len(p) > maxLogBytes {
		keep := append([]byte(nil), l.buf.Bytes()[l.buf.Len()/2:]...)
		l.buf.Reset()
		l.buf.Write(keep)
		l.dropped = true
	}
	return l.buf.Write(p)
}

// String returns the kept log.
func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped {
		return "[earlier output dropped]\n" + l.buf.String()
	}
	return l.buf.String()
}
