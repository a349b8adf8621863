// Package cmdoutput keeps what a command that tlspilot runs (a dns-01
// exec hook, a reload command) wrote, within a bound: such a command may
// write without end, and only its last words go into an error.
package cmdoutput

import (
	"bytes"
	"sync"
)

// Tail is an io.Writer that keeps the last Max bytes written to it.
// Writes never fail; it is safe for concurrent use (a command's standard
// output and standard error may both write to it). The zero value keeps
// nothing; set Max.
type Tail struct {
	Max int // bytes kept, the last ones

	mu  sync.Mutex
	buf bytes.Buffer
	cut bool
}

// Write keeps the end of p, dropping older bytes past Max.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.Max {
		p = p[len(p)-t.Max:]
		t.cut = true
	}
	t.buf.Write(p)
	if over := t.buf.Len() - t.Max; over > 0 {
		t.buf.Next(over)
		t.cut = true
	}
	return n, nil
}

// String returns the bytes kept, starting with "…" when older ones were
// dropped.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "…" + t.buf.String()
	}
	return t.buf.String()
}
