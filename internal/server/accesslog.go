package server

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter records what a response sent, for the access log, and sends
// file bodies itself: sendfile(2) on plain HTTP/1, a pooled buffer
// elsewhere (io.Copy would allocate 32 KiB per HTTP/2 response). Writers are
// pooled; none outlives its request.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	site   string
	tls    bool
	bufs   *bufferPool

	body        *bodyReader   // the request's body, if any
	sendTimeout time.Duration // idle write deadline; 0: none
	armed       time.Time     // when the write deadline was last pushed forward

	headers   []header // the site's response headers (siteHeaders)
	interim   bool     // a 1xx answer was written since the last final one
	yielded   bool     // the site's defaults were removed for an upstream's own (yieldDefaults)
	closeConn bool     // the connection must close after the answer (a chunked HTTP/1 request)
	http10    bool     // the request is HTTP/1.0: no interim answers
	h2        bool     // the request is HTTP/2: its stream has a write timer

	tunnel *atomic.Int64 // bytes written to the connection once hijacked
}

// WriteHeader writes the status, and makes the answer what the site and
// HTTP ask whoever wrote it (a proxied upstream, above all):
//
//   - the final answer gets back, where they are missing, the site's
//     defaults a proxy left to the upstream (yieldDefaults), and after an
//     interim answer (103 Early Hints, a relayed 100) all the site's
//     headers and the Connection: close a chunked request asks for,
//     since httputil.ReverseProxy clears the header map once it has
//     passed a 1xx on. Other headers a handler removed stay removed
//     (http.ServeContent drops Cache-Control from its errors);
//   - with no Content-Type, none is guessed from the body (net/http would
//     sniff one: a script could become text/html, or JavaScript text/plain
//     that nosniff then blocks); nginx sends none either;
//   - a 204 carries no Content-Length (RFC 9110 §8.6; HTTP/2 clients
//     refuse the stream);
//   - an HTTP/1.0 client gets no interim answer (RFC 9110 §15.2).
func (w *logWriter) WriteHeader(code int) {
	interim := code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
	if interim && w.http10 {
		return
	}
	if interim {
		w.interim = true
	} else {
		h := w.Header()
		if w.interim || w.yielded {
			for _, sh := range w.headers {
				if _, ok := h[sh.key]; !ok && (w.interim || sh.dflt) {
					h[sh.key] = sh.val
				}
			}
			if w.interim && w.closeConn {
				h["Connection"] = connectionClose
			}
			w.interim = false
		}
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // net/http: "set it to nil" to suppress sniffing
		}
		if code == http.StatusNoContent {
			delete(h, "Content-Length")
		}
	}
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.progress()
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom sends file bodies by sendfile(2) where the connection allows
// (plain HTTP/1) and through a pooled buffer elsewhere.
func (w *logWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	rf, _ := w.ResponseWriter.(io.ReaderFrom)
	if lr, ok := src.(*io.LimitedReader); ok {
		if fb, ok := lr.R.(*fileBody); ok {
			if w.tls {
				rf = nil
			}
			n, err := w.copyFileBody(rf, fb, lr.N)
			lr.N -= n
			w.bytes += n
			return n, err
		}
	}
	var n int64
	var err error
	if rf != nil {
		w.progress()
		n, err = rf.ReadFrom(src)
	} else {
		buf := w.bufs.Get()
		n, err = io.CopyBuffer(writerOnly{progressWriter{w}}, src, buf)
		w.bufs.Put(buf)
	}
	w.bytes += n
	return n, err
}

// Flush lets streamed responses (server-sent events) through at once.
// On HTTP/2 the stream's write timer then stops until the next write
// (pauseWrites): a stream between two events is waiting, not stalled.
func (w *logWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		w.progress()
		f.Flush()
		w.pauseWrites()
	}
}

// Hijack hands the connection over for protocol upgrades (WebSocket).
// What is then written to the returned connection counts as the
// answer's bytes in the access log, as nginx's $body_bytes_sent counts a
// tunnel's; the count lives apart from the pooled writer, since a tunnel's
// copy may still write as its request ends.
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	w.tunnel = new(atomic.Int64)
	return &countConn{Conn: c, n: w.tunnel}, brw, nil
}

// countConn counts the bytes written to a hijacked connection.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

// Write counts p before writing it, and takes back what was not written:
// once the client has the bytes it may close the tunnel, and the request
// ends, and is logged, as soon as that side's copy stops; counted after
// the write, the last bytes the client got could be missing from the
// line.
func (c *countConn) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.n.Add(int64(n - len(p)))
	}
	return n, err
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides ReadFrom so io.CopyBuffer uses the buffer.
type writerOnly struct{ io.Writer }

// progressWriter writes to the underlying writer, pushing the write
// deadline forward, without counting bytes (ReadFrom counts them).
type progressWriter struct{ w *logWriter }

func (p progressWriter) Write(b []byte) (int, error) {
	p.w.progress()
	return p.w.ResponseWriter.Write(b)
}

// accessLog wraps handlers with a pooled logWriter and writes one line
// per request when a logger is configured.
type accessLog struct {
	log         *slog.Logger // nil: no access log
	bufs        *bufferPool
	writers     sync.Pool
	sendTimeout time.Duration
	bodyTimeout time.Duration
}

func (a *accessLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw, _ := a.writers.Get().(*logWriter)
		if lw == nil {
			lw = new(logWriter)
		}
		start := time.Now()
		*lw = logWriter{ResponseWriter: w, bufs: a.bufs, tls: r.TLS != nil, sendTimeout: a.sendTimeout, armed: start,
			http10: r.ProtoMajor == 1 && r.ProtoMinor == 0, h2: r.ProtoMajor == 2}
		if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
			// RFC 9112 §6.1: a request with both Content-Length and
			// Transfer-Encoding must have its connection closed after
			// the response. net/http drops the Content-Length before any
			// handler sees it, so every chunked HTTP/1 request closes
			// its connection; browsers never send one.
			w.Header()["Connection"] = connectionClose
			lw.closeConn = true
		}
		var br *bodyReader
		if r.Body != nil && r.Body != http.NoBody {
			br = newBodyReader(r, w, a.bodyTimeout, a.sendTimeout, start)
			r.Body, lw.body = br, br
		}
		defer a.done(lw, br, r, start)
		next.ServeHTTP(lw, r)
	})
}

var connectionClose = []string{"close"}[:1:1]

func (a *accessLog) done(lw *logWriter, br *bodyReader, r *http.Request, start time.Time) {
	if lw.tunnel != nil {
		lw.bytes += lw.tunnel.Load()
	}
	if a.log != nil && a.log.Enabled(r.Context(), slog.LevelInfo) {
		status := lw.status
		if status == 0 {
			status = http.StatusOK
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("host", r.Host),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", lw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000), // the unit in the key: JSON has none
			slog.String("remote", r.RemoteAddr),
			slog.String("proto", r.Proto),
			slog.String("site", lw.site),
		)
	}
	lw.resumeWrites()
	*lw = logWriter{}
	a.writers.Put(lw)
	if br != nil {
		br.detach()
	}
}

// siteHeaders sets a site's response headers on w and, when w is the
// access log's writer, keeps them for a final answer after an interim one
// (see logWriter.WriteHeader).
func siteHeaders(w http.ResponseWriter, hs []header) {
	setHeaders(w.Header(), hs)
	if lw, ok := w.(*logWriter); ok {
		lw.headers = hs
	}
}

// setSite records the site for the access log line, if w is ours.
func setSite(w http.ResponseWriter, name string) {
	if lw, ok := w.(*logWriter); ok {
		lw.site = name
	}
}
