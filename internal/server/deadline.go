package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// Idle deadlines on client connections, nginx-style: a read or a write
// that makes no progress for the timeout ends the request.
//
// net/http has no idle timeouts for bodies: ReadTimeout and WriteTimeout
// bound a whole request, which would cut a slow but live upload or
// download. So the server's WriteTimeout (per request on HTTP/1, per
// stream on HTTP/2) is set to Options.SendTimeout and pushed forward as
// the response makes progress, every socket write has an idle deadline
// of its own (limitConn.armWrite: a stalled HTTP/2 connection, whichever
// stream waits), and request bodies get a read deadline pushed forward
// as they arrive. Deadlines are re-armed at most every quarter of the
// timeout (on HTTP/2 each re-arm costs a timer), so a stall is detected
// after between 3/4 and all of the timeout.

// deadliner is what net/http's HTTP/1 and HTTP/2 response writers
// implement for http.ResponseController.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// rearm reports whether a deadline last armed at armed is due to be
// pushed forward at now.
func rearm(armed, now time.Time, timeout time.Duration) bool {
	return timeout > 0 && now.Sub(armed) >= timeout/4
}

// progress pushes the write deadline forward; it is called before each
// write of the response body. It does not allocate on HTTP/1, nor on
// HTTP/2 between re-arms.
func (w *logWriter) progress() {
	now := time.Now()
	if !rearm(w.armed, now, w.sendTimeout) {
		return
	}
	paused := w.armed.IsZero()
	w.armed = now
	if d, ok := w.ResponseWriter.(deadliner); ok {
		d.SetWriteDeadline(now.Add(w.sendTimeout))
	}
	if paused && w.h2 && w.body != nil {
		w.body.resumeWriteDeadline(w.sendTimeout, now) // the upload's bytes push it again
	}
}

// pauseWrites stops an HTTP/2 stream's write timer while the handler
// waits on something other than the client: an upstream's answer, or the
// next event of a stream it relays. net/http's per-stream WriteTimeout is
// a timer that resets the stream when it fires, whether a write is under
// way or not, so it cut an upstream slower than the send timeout (a
// reset instead of a 504) and event streams quiet for that long. The
// next write arms it again (progress), so a client that takes nothing
// is still cut. HTTP/1 needs none of this: its deadline is the socket's,
// which only a write under way can miss.
func (w *logWriter) pauseWrites() {
	if !w.h2 || w.sendTimeout <= 0 || w.armed.IsZero() {
		return
	}
	if d, ok := w.ResponseWriter.(deadliner); ok {
		d.SetWriteDeadline(time.Time{})
		w.armed = time.Time{}
	}
	if w.body != nil {
		w.body.stopWriteDeadline()
	}
}

// resumeWrites arms a paused write timer again as the handler returns:
// net/http writes what is still buffered after it.
func (w *logWriter) resumeWrites() {
	if w.h2 && w.sendTimeout > 0 && w.armed.IsZero() {
		w.progress()
	}
}

// bodyReader gives a request body an idle read deadline and remembers
// the first error reading it, which is the client's doing (an aborted
// upload, a malformed chunked body, a stall), never the upstream's.
//
// A proxy's transport may still read the body on its own goroutine
// after the handler returned, when net/http's response writer must no
// longer be touched: detach, called as the handler returns, stops the
// deadlines. mu guards every field but rc.
type bodyReader struct {
	rc io.ReadCloser

	mu       sync.Mutex
	d        deadliner // nil: no deadlines (not net/http's writer)
	timeout  time.Duration
	send     time.Duration // HTTP/2: the stream's write deadline is pushed forward too
	armed    time.Time     // read deadline
	wArmed   time.Time     // write deadline (HTTP/2)
	http1    bool
	detached bool
	err      error
}

func newBodyReader(r *http.Request, w http.ResponseWriter, bodyTimeout, sendTimeout time.Duration, start time.Time) *bodyReader {
	d, _ := w.(deadliner)
	b := &bodyReader{rc: r.Body, d: d, timeout: bodyTimeout, http1: r.ProtoMajor == 1, wArmed: start}
	if !b.http1 {
		b.send = sendTimeout
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.before()
	n, err := b.rc.Read(p)
	b.after(err)
	return n, err
}

// stopWriteDeadline stops pushing the write deadline forward while the
// response's writer has paused it (pauseWrites).
func (b *bodyReader) stopWriteDeadline() {
	b.mu.Lock()
	b.send = 0
	b.mu.Unlock()
}

// resumeWriteDeadline pushes the write deadline forward again as the
// body arrives, as from armed, once the response's writer armed it anew:
// an upload still arriving while the answer is under way (full duplex)
// is progress on the stream.
func (b *bodyReader) resumeWriteDeadline(send time.Duration, armed time.Time) {
	b.mu.Lock()
	if !b.detached {
		b.send, b.wArmed = send, armed
	}
	b.mu.Unlock()
}

// before pushes the deadlines forward.
func (b *bodyReader) before() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.d == nil || b.detached {
		return
	}
	now := time.Now()
	if b.timeout > 0 && (b.armed.IsZero() || rearm(b.armed, now, b.timeout)) {
		b.armed = now
		b.d.SetReadDeadline(now.Add(b.timeout))
	}
	if rearm(b.wArmed, now, b.send) {
		b.wArmed = now
		b.d.SetWriteDeadline(now.Add(b.send))
	}
}

// after records the client's error, or lifts the read deadline at the
// end of an HTTP/1 body: net/http's background read, which notices a
// client going away during the response, must not time out.
func (b *bodyReader) after(err error) {
	if err == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == io.EOF:
		if b.http1 && !b.armed.IsZero() && !b.detached {
			b.d.SetReadDeadline(time.Time{})
			b.armed = time.Time{}
		}
	case b.err == nil:
		b.err = err
	}
}

// detach stops touching the response writer; the body stays readable.
// It is called as the handler returns: an HTTP/1 body not read to its
// end then gets a read deadline, since net/http reads (up to 256 KiB of)
// the rest after the handler to keep the connection.
func (b *bodyReader) detach() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.http1 && b.d != nil && b.timeout > 0 {
		b.d.SetReadDeadline(time.Now().Add(b.timeout))
	}
	b.detached = true
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// clientErr is the first error reading the body, other than EOF.
func (b *bodyReader) clientErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// clientBodyErr returns the error the client caused reading the body of
// the request w answers, if any. (ReverseProxy's error handler gets its
// own copy of the request, with the body wrapped, but our writer.)
func clientBodyErr(w http.ResponseWriter) error {
	if lw, ok := w.(*logWriter); ok && lw.body != nil {
		return lw.body.clientErr()
	}
	return nil
}

// Status codes of requests the client broke off or spoiled.
const (
	// StatusClientClosed is nginx's 499: the client went away before the
	// response (an aborted upload, a cancelled request). It only reaches
	// the access log.
	StatusClientClosed = 499
)

// clientStatus maps an error the client caused to the status logged and
// (if the client still listens) answered: 408 for a stalled body, 499
// for a client gone, 400 for a malformed body.
func clientStatus(r *http.Request, err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	case r.Context().Err() != nil, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.Canceled),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		isStreamGone(err):
		return StatusClientClosed
	}
	return http.StatusBadRequest
}

// isStreamGone recognizes net/http's HTTP/2 errors for a stream the
// client reset or a connection it closed (they are not exported).
func isStreamGone(err error) bool {
	s := err.Error()
	return s == "client disconnected" || s == "http2: stream closed" || s == "body closed by handler"
}
