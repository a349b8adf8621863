package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Differential tests: two servers, each with one site proxying to an
// upstream of its own that answers alike, identical except for the
// RoundTripper their proxy uses. One runs as built (upstreamTransport,
// falling back to http.Transport for streamed bodies); the control's
// proxy uses a plain http.Transport (newTransport) for everything, as the
// proxy did before upstreamTransport. The same requests go through both,
// from an HTTP/1.1 and an HTTP/2 client, each several times in a row on
// the same client connection; what the client sees and what the upstream
// sees must agree, except for the differences documented in
// normalizeDiff (not bugs) and acceptedDiff (deliberate limits), and for
// exchanges whose outcome depends on a race in http.Transport or on the
// state of a connection pool (see compareDiff). The "Unsolicited
// response received on idle HTTP channel" lines in the output are
// http.Transport's, logged for the headbody answer.

// diffSeen is what an upstream saw of one request.
type diffSeen struct {
	Method, RequestURI, Host, Proto string
	Header                          http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Body                            []byte // nil: left unread (the upstream answered first)
	Trailer                         http.Header
	Head                            []byte // the request line and header section as sent
	Reused                          bool   // not the connection's first request (not compared)
}

// diffUpstream is a raw HTTP/1.1 upstream whose answers are written byte
// by byte, chosen by the request path's second segment (/a/<answer>/…).
type diffUpstream struct {
	*rawUpstream
	mu   sync.Mutex
	seen []diffSeen
}

func startDiffUpstream(t *testing.T) *diffUpstream {
	t.Helper()
	u := &diffUpstream{}
	// serve reads through its own reader, which keeps the raw bytes.
	u.rawUpstream = startRawUpstream(t, nil, func(c net.Conn, _ *bufio.Reader) { u.serve(c) })
	return u
}

// serve answers the requests on one connection until an answer ends it.
func (u *diffUpstream) serve(c net.Conn) {
	var raw bytes.Buffer // what was read from c and not yet taken as a head
	br := bufio.NewReader(io.TeeReader(c, &raw))
	for i := 0; ; i++ {
		// Keep only what br has read ahead: the start of this request.
		ahead := bytes.Clone(raw.Bytes()[raw.Len()-br.Buffered():])
		raw.Reset()
		raw.Write(ahead)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		head, _, _ := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n"))
		head = bytes.Clone(head)
		a := diffAnswers[answerName(r.URL.Path)]
		if a == nil {
			a = answerOK
		}
		if a.diesReused && i > 0 {
			// Takes the request on a reused connection and closes it
			// without an answer.
			u.record(r, head, nil, i > 0)
			return
		}
		if a.before != nil {
			// Answer without reading the body, then close gracefully
			// (RFC 9112 §9.6): stop writing, and read what is still
			// sent until the proxy closes, so that no reset destroys
			// the answer before the proxy has read it.
			u.record(r, head, nil, i > 0)
			io.WriteString(c, a.before(r))
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			io.Copy(io.Discard, br)
			return
		}
		if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		u.record(r, head, body, i > 0)
		if a.takeover != nil {
			a.takeover(c, br)
			return
		}
		raw, keep := a.write(r)
		if _, err := io.WriteString(c, raw); err != nil || !keep || r.Close {
			return
		}
	}
}

func (u *diffUpstream) record(r *http.Request, head, body []byte, reused bool) {
	s := diffSeen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto, Header: r.Header.Clone(),
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Body: body, Trailer: r.Trailer.Clone(), Head: head, Reused: reused}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()
}

// take returns the requests seen since the last take.
func (u *diffUpstream) take() []diffSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

func (u *diffUpstream) connCount() int { return int(u.accepted.Load()) }

func answerName(path string) string {
	rest, ok := strings.CutPrefix(path, "/a/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// diffAnswer writes the raw answer to a request whose body was read
// (write; keep false closes the connection after it), or to one whose
// body is left unread (before; the connection is then closed).
type diffAnswer struct {
	write      func(r *http.Request) (raw string, keep bool)
	before     func(r *http.Request) string
	diesReused bool // on a reused connection, close it unanswered instead
	// takeover, if set, answers and then owns the connection.
	takeover func(c net.Conn, br *bufio.Reader)
}

var answerOK = &diffAnswer{write: func(r *http.Request) (string, bool) {
	return diffFixed(r, "200 OK", "Content-Type: text/plain\r\n", "hello from upstream"), true
}}

// diffFixed is an answer with a Content-Length; HEAD gets no body.
func diffFixed(r *http.Request, status, hdr, body string) string {
	s := "HTTP/1.1 " + status + "\r\n" + hdr + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if r.Method != http.MethodHead {
		s += body
	}
	return s
}

// diffWithBody is head followed by body, except for HEAD.
func diffWithBody(r *http.Request, head, body string) string {
	if r.Method == http.MethodHead {
		return head
	}
	return head + body
}

// diffChunked is an answer with a chunked body; HEAD gets no body.
func diffChunked(r *http.Request, hdr, trailer string, chunks ...string) string {
	s := "HTTP/1.1 200 OK\r\n" + hdr + "Transfer-Encoding: chunked\r\n\r\n"
	if r.Method == http.MethodHead {
		return s
	}
	for _, c := range chunks {
		s += fmt.Sprintf("%x\r\n%s\r\n", len(c), c)
	}
	return s + "0\r\n" + trailer + "\r\n"
}

// diffKeep and diffClosing make answers that keep the connection open
// or close it.
func diffKeep(f func(r *http.Request) string) *diffAnswer {
	return &diffAnswer{write: func(r *http.Request) (string, bool) { return f(r), true }}
}

func diffClosing(f func(r *http.Request) string) *diffAnswer {
	return &diffAnswer{write: func(r *http.Request) (string, bool) { return f(r), false }}
}

// diffGzipped is "hello, compressed", gzipped.
var diffGzipped = func() string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, "hello, compressed")
	zw.Close()
	return b.String()
}()

var diffAnswers = map[string]*diffAnswer{
	"ok": answerOK,
	"chunked": diffKeep(func(r *http.Request) string {
		return diffChunked(r, "Content-Type: text/plain\r\n", "", "hello, ", "chunked ", "world")
	}),
	"trailers": diffKeep(func(r *http.Request) string {
		return diffChunked(r, "Trailer: X-Sum, X-Other\r\n", "X-Sum: 42\r\nX-Other: o\r\nX-Undeclared: u\r\n", "body with ", "trailers")
	}),
	"undeclared": diffKeep(func(r *http.Request) string {
		return diffChunked(r, "", "X-Late: late\r\nX-Late: twice\r\n", "body with undeclared trailers")
	}),
	"http10": diffClosing(func(r *http.Request) string {
		s := "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
		if r.Method != http.MethodHead {
			s += "a body delimited by the connection's end"
		}
		return s
	}),
	"nocontent": diffKeep(func(*http.Request) string { return "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n" }),
	"cond": diffKeep(func(r *http.Request) string {
		if r.Header.Get("If-None-Match") == `"v1"` {
			return "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n"
		}
		return diffFixed(r, "200 OK", "ETag: \"v1\"\r\nCache-Control: max-age=60\r\n", "fresh")
	}),
	"hints": diffKeep(func(r *http.Request) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
			diffFixed(r, "200 OK", "Link: </s.css>; rel=preload\r\n", "after hints")
	}),
	"moved": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "301 Moved Permanently", "Location: /elsewhere?x=1\r\n", "moved")
	}),
	"notfound": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "404 Not Found", "Content-Type: text/html\r\n", "<h1>no</h1>")
	}),
	"error": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "500 Internal Server Error", "Content-Type: text/plain\r\n", "it broke")
	}),
	"cookies": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\nSet-Cookie: c=3; Secure; SameSite=Lax\r\n", "cookies")
	}),
	"gzip": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n", diffGzipped)
	}),
	"bighead": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "X-Big: "+strings.Repeat("h", 100<<10)+"\r\nX-Big-2: "+strings.Repeat("i", 1000)+"\r\n", "big head")
	}),
	"close": diffClosing(func(r *http.Request) string { return diffFixed(r, "200 OK", "Connection: close\r\n", "closing") }),
	"headlen": diffKeep(func(r *http.Request) string {
		if r.Method == http.MethodHead {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12345\r\n\r\n"
		}
		return diffFixed(r, "200 OK", "Content-Type: text/plain\r\n", "a GET answer")
	}),
	"hop": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "Connection: X-Foo, keep-alive\r\nX-Foo: hop secret\r\nKeep-Alive: timeout=5, max=100\r\nX-Bar: end to end\r\n", "hop")
	}),
	"keepalive": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "Keep-Alive: timeout=5, max=100\r\n", "keep-alive")
	}),
	// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
	"tecl": diffKeep(func(r *http.Request) string {
		s := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
		if r.Method != http.MethodHead {
			s += "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
		}
		return s
	}),
	"tecl-long": diffKeep(func(r *http.Request) string {
		s := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1000\r\n\r\n"
		if r.Method != http.MethodHead {
			s += "5\r\nhello\r\n0\r\n\r\n"
		}
		return s
	}),
	"ws": diffKeep(func(r *http.Request) string {
		s := "HTTP/1.1 200 OK\r\nX-Trail: trailing spaces   \r\nX-Lead:    leading\r\nX-Tab:\ttabbed\t\r\n" +
			"X-Fold: first\r\n  folded\r\nX-Empty:\r\nContent-Length:  5 \r\n\r\n"
		if r.Method != http.MethodHead {
			s += "hello"
		}
		return s
	}),
	"noreason": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n", "ok")
	}),
	"barelf": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\nX-Lf: yes\nContent-Length: 2\n\n", "ok")
	}),
	"spacecolon": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nX-Bad : v\r\nContent-Length: 2\r\n\r\n", "ok")
	}),
	// A body sent with a HEAD answer (RFC 9112 §6.3: a HEAD answer ends
	// with its header section): bytes that are no answer to anything.
	"headbody":     diffKeep(func(r *http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }),
	"dies":         {diesReused: true, write: answerOK.write},
	"nocontent-cl": diffKeep(func(*http.Request) string { return "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" }),
	"notmod-te": diffKeep(func(*http.Request) string {
		return "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n\r\n"
	}),
	"dupcl": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", "ok")
	}),
	"listcl": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n", "ok")
	}),
	"badcl": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", "ok!")
	}),
	"te-gzip": diffClosing(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "2\r\nok\r\n0\r\n\r\n")
	}),
	"te-identity": diffClosing(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "identity body")
	}),
	"http10-chunked": diffClosing(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nok\r\n0\r\n\r\n")
	}),
	"http10-keepalive": diffKeep(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", "ok")
	}),
	"truncated": diffClosing(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "only")
	}),
	"truncated-chunked": diffClosing(func(r *http.Request) string {
		return diffWithBody(r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "a\r\nonly")
	}),
	"bigbody": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", "Content-Type: application/octet-stream\r\n", strings.Repeat("0123456789abcdef", 1<<16))
	}),
	"bigchunked": diffKeep(func(r *http.Request) string {
		return diffChunked(r, "Content-Type: application/octet-stream\r\n", "", slices.Repeat([]string{strings.Repeat("x", 40000)}, 30)...)
	}),
	"upgrade": {takeover: func(c net.Conn, _ *bufio.Reader) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nupgraded, now closing")
	}},
	"hints5": diffKeep(func(r *http.Request) string {
		return strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 5) + diffFixed(r, "200 OK", "", "after 5 hints")
	}),
	"hints6": diffKeep(func(r *http.Request) string {
		return strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 6) + diffFixed(r, "200 OK", "", "after 6 hints")
	}),
	"hugehead": diffKeep(func(r *http.Request) string {
		return diffFixed(r, "200 OK", strings.Repeat("X-Huge: "+strings.Repeat("h", 1000)+"\r\n", 1100), "huge head")
	}),
	"reject": {before: func(*http.Request) string {
		return "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope"
	}},
}

// startDiffServer starts a server whose one site, a.test, proxies to
// addr; with control its proxy uses a plain http.Transport. The
// transport is swapped before Serve, so before any request reads it.
func startDiffServer(t *testing.T, addr string, control bool) *testServer {
	t.Helper()
	c := newTestCert(t, "a.test")
	hl, tl := listen(t), listen(t)
	s, err := New(Options{HTTPListener: hl, HTTPSListener: tl, DrainTimeout: 5 * time.Second,
		Sites: []Site{{Names: []string{"a.test"}, Proxy: []string{"http://" + addr}, Cert: c.source()}}})
	if err != nil {
		t.Fatal(err)
	}
	p := s.table.Load().sites[0].main.(*proxy)
	if _, ok := p.tr.(*upstreamTransport); !ok {
		t.Fatalf("the proxy's transport is %T, want *upstreamTransport", p.tr)
	}
	if control {
		tr := newTransport()
		p.tr = tr
		t.Cleanup(tr.CloseIdleConnections)
	}
	serveUntilCleanup(t, s)
	return &testServer{Server: s, httpAddr: hl.Addr().String(), httpsAddr: tl.Addr().String(), roots: poolOf(c)}
}

// diffCase is one request of the battery.
type diffCase struct {
	name    string
	method  string
	path    string
	body    int  // bytes of request body; 0 with chunked sends an empty chunked body
	chunked bool // the client sends the body without a length
	header  []string
	h1only  bool // HTTP/2 forbids the request (connection-specific headers)
	trailer bool // the client sends a trailer field after a chunked body
}

func diffBattery() []diffCase {
	var cs []diffCase
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		cs = append(cs, diffCase{name: m, method: m, path: "/a/ok/"})
	}
	for _, n := range []int{0, 1, 4096, 65535, 65536, 70000} {
		for _, ch := range []bool{false, true} {
			cs = append(cs, diffCase{name: fmt.Sprintf("POST %d chunked=%v", n, ch), method: "POST", path: "/a/ok/body", body: n, chunked: ch})
		}
		cs = append(cs, diffCase{name: fmt.Sprintf("PUT %d", n), method: "PUT", path: "/a/ok/put", body: n})
		cs = append(cs, diffCase{name: fmt.Sprintf("POST %d Expect", n), method: "POST", path: "/a/ok/expect", body: n,
			header: []string{"Expect", "100-continue"}})
	}
	cs = append(cs,
		diffCase{name: "GET with body", method: "GET", path: "/a/ok/getbody", body: 10},
		diffCase{name: "DELETE with body", method: "DELETE", path: "/a/ok/delbody", body: 10},
		diffCase{name: "Expect rejected 4096", method: "POST", path: "/a/reject/", body: 4096, header: []string{"Expect", "100-continue"}},
		diffCase{name: "Expect rejected 70000", method: "POST", path: "/a/reject/", body: 70000, header: []string{"Expect", "100-continue"}},
	)
	for _, p := range []string{
		"/a/ok/?q=1&q=2&empty=&sp=a%20b+c",
		"/a/ok/%7Euser/a;b=c/x%2Fy",
		"/a/ok//double//slash/",
		"/a/ok/dot/./seg/../x",
		"/a/ok/%C3%BCn%C3%AFcode?%C3%A9=%E2%82%AC",
		"/a/ok/odd!$&'()*+,;=:@-._~",
		"/a/ok/x?a=%zz&b=?c",
		"/a/ok/?",
		"/a/ok/q?url=http://x/?y#frag",
	} {
		cs = append(cs, diffCase{name: "path " + p, method: "GET", path: p})
	}
	for _, a := range []string{"chunked", "trailers", "undeclared", "http10", "nocontent", "cond", "hints", "moved",
		"notfound", "error", "cookies", "bighead", "close", "headlen", "hop", "keepalive", "tecl", "tecl-long",
		"ws", "noreason", "barelf", "spacecolon", "headbody", "nocontent-cl", "notmod-te", "dupcl", "listcl", "badcl",
		"te-gzip", "te-identity", "http10-chunked", "http10-keepalive", "truncated", "truncated-chunked", "bigbody", "bigchunked",
		"hints5", "hints6", "hugehead"} {
		cs = append(cs, diffCase{name: "answer " + a, method: "GET", path: "/a/" + a + "/"})
		cs = append(cs, diffCase{name: "answer " + a + " to HEAD", method: "HEAD", path: "/a/" + a + "/"})
	}
	cs = append(cs,
		diffCase{name: "answer trailers to POST", method: "POST", path: "/a/trailers/", body: 100},
		diffCase{name: "conditional GET", method: "GET", path: "/a/cond/", header: []string{"If-None-Match", `"v1"`}},
		diffCase{name: "gzip", method: "GET", path: "/a/gzip/", header: []string{"Accept-Encoding", "gzip, br"}},
		diffCase{name: "gzip identity", method: "GET", path: "/a/gzip/", header: []string{"Accept-Encoding", "identity"}},
		diffCase{name: "request headers", method: "GET", path: "/a/ok/hdr", header: []string{
			"X-Multi", "one", "X-Multi", "two", "Cookie", "a=1", "Cookie", "b=2", "X-Space", "  padded value ",
			"Te", "trailers", "Cache-Control", "no-cache", "Authorization", "Bearer x", "X-Forwarded-For", "10.9.9.9",
			"X-Real-Ip", "10.9.9.9", "Forwarded", "for=10.9.9.9"}},
		diffCase{name: "POST 4096 chunked Expect", method: "POST", path: "/a/ok/expect", body: 4096, chunked: true,
			header: []string{"Expect", "100-continue"}},
		diffCase{name: "TRACE", method: "TRACE", path: "/a/ok/trace"},
		diffCase{name: "PROPFIND", method: "PROPFIND", path: "/a/ok/dav", body: 50},
		diffCase{name: "Host upper case", method: "GET", path: "/a/ok/host", header: []string{"Host", "A.Test"}},
		diffCase{name: "Host with port", method: "GET", path: "/a/ok/host", header: []string{"Host", "a.test:443"}},
		diffCase{name: "big request header", method: "GET", path: "/a/ok/big", header: []string{"X-Big", strings.Repeat("r", 50<<10)}},
		diffCase{name: "dies GET", method: "GET", path: "/a/dies/"},
		diffCase{name: "dies HEAD", method: "HEAD", path: "/a/dies/"},
		diffCase{name: "dies DELETE", method: "DELETE", path: "/a/dies/"},
		diffCase{name: "dies POST", method: "POST", path: "/a/dies/", body: 10},
		diffCase{name: "dies POST empty", method: "POST", path: "/a/dies/"},
		diffCase{name: "dies POST idempotency key", method: "POST", path: "/a/dies/", header: []string{"Idempotency-Key", "k1"}},
		diffCase{name: "dies PUT idempotency key with body", method: "PUT", path: "/a/dies/", body: 10, header: []string{"Idempotency-Key", "k2"}},
		diffCase{name: "request trailer", method: "POST", path: "/a/ok/trailer", body: 100, chunked: true, trailer: true},
		diffCase{name: "request trailer 70000", method: "POST", path: "/a/ok/trailer", body: 70000, chunked: true, trailer: true},
		diffCase{name: "upgrade", method: "GET", path: "/a/upgrade/", h1only: true, header: []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		diffCase{name: "upgrade declined", method: "GET", path: "/a/ok/upgrade", h1only: true, header: []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		diffCase{name: "request hop-by-hop", method: "GET", path: "/a/ok/hop", h1only: true, header: []string{
			"Connection", "X-Hop, Keep-Alive", "X-Hop", "hop", "Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive"}},
		diffCase{name: "request Connection close", method: "GET", path: "/a/ok/close", h1only: true, header: []string{"Connection", "close"}},
		diffCase{name: "request Connection close with body", method: "POST", path: "/a/ok/closebody", body: 300, h1only: true,
			header: []string{"Connection", "close"}},
	)
	return cs
}

// diffView is what a client saw of one exchange.
type diffView struct {
	Status  int
	Interim []int
	Header  http.Header
	Body    []byte
	Trailer http.Header
	Err     string
}

func (tc *diffCase) request(ctx context.Context, interim *[]int) *http.Request {
	var body io.Reader
	if tc.body > 0 || tc.chunked {
		b := bytes.Repeat([]byte("0123456789abcdef"), tc.body/16+1)[:tc.body]
		if tc.chunked {
			body = struct{ io.Reader }{bytes.NewReader(b)} // length unknown
		} else {
			body = bytes.NewReader(b)
		}
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			*interim = append(*interim, code)
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, tc.method, "https://a.test"+tc.path, body)
	if tc.trailer {
		req.Trailer = http.Header{"X-Req-Trailer": {"t"}}
	}
	for i := 0; i+1 < len(tc.header); i += 2 {
		if tc.header[i] == "Host" {
			req.Host = tc.header[i+1]
		} else {
			req.Header.Add(tc.header[i], tc.header[i+1])
		}
	}
	return req
}

func (tc *diffCase) do(t *testing.T, cl *http.Client) diffView {
	t.Helper()
	var v diffView
	resp, err := cl.Do(tc.request(t.Context(), &v.Interim))
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer resp.Body.Close()
	v.Status, v.Header = resp.StatusCode, resp.Header
	v.Body, err = io.ReadAll(resp.Body)
	if err != nil {
		v.Err = "read body: " + err.Error()
	}
	v.Trailer = resp.Trailer
	return v
}

// TestUpstreamDiff sends the battery through a server using
// upstreamTransport and a control server using http.Transport, over
// HTTP/1.1 and HTTP/2, three times in a row per client, and compares
// what the clients and the upstreams saw.
func TestUpstreamDiff(t *testing.T) {
	upNew, upCtl := startDiffUpstream(t), startDiffUpstream(t)
	srvNew, srvCtl := startDiffServer(t, upNew.addr, false), startDiffServer(t, upCtl.addr, true)
	for _, h2 := range []bool{false, true} {
		proto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		clNew, clCtl := srvNew.client(t, h2), srvCtl.client(t, h2)
		for _, tc := range diffBattery() {
			if tc.h1only && h2 {
				continue
			}
			for round := range 3 {
				if answerName(tc.path) == "dies" {
					// Leave a connection in each pool for it to die on.
					warm := diffCase{method: "GET", path: "/a/ok/warm"}
					warm.do(t, clNew)
					warm.do(t, clCtl)
					upNew.take()
					upCtl.take()
				}
				gotNew, gotCtl := tc.do(t, clNew), tc.do(t, clCtl)
				compareDiff(t, fmt.Sprintf("%s %s (round %d)", proto, tc.name, round), &tc, h2, gotNew, gotCtl, upNew.take(), upCtl.take())
				if answerName(tc.path) == "headbody" {
					// http.Transport may take the body sent with a HEAD
					// answer for the next answer (see compareDiff): on the
					// control only, a request that is not compared takes
					// it. upstreamTransport's next answer is compared.
					settle := diffCase{method: "GET", path: "/a/ok/settle"}
					settle.do(t, clCtl)
					upCtl.take()
				}
			}
		}
	}
	t.Logf("upstream connections: upstreamTransport %d, http.Transport %d", upNew.connCount(), upCtl.connCount())
}

// compareDiff reports what differs between the two servers' exchanges,
// after checks of the server under test that hold whatever the control
// did, and with the legitimate differences (normalizeDiff) taken out.
func compareDiff(t *testing.T, what string, tc *diffCase, h2 bool, gotNew, gotCtl diffView, seenNew, seenCtl []diffSeen) {
	t.Helper()
	if answerName(tc.path) == "dies" && !(len(seenNew) > 0 && seenNew[0].Reused && len(seenCtl) > 0 && seenCtl[0].Reused) {
		// Which pooled connection a request gets, if any, depends on
		// when the previous answer's connection went back to the pool
		// (on HTTP/2 the next stream may start before); only exchanges
		// that met a reused connection on both sides test the replay.
		t.Logf("%s: not on a reused connection on both sides, not compared", what)
		return
	}
	if acceptedDiff(t, what, tc, gotNew, gotCtl) {
		return
	}
	if describeSeen(seenNew, true) != describeSeen(seenCtl, true) {
		t.Errorf("%s: the upstream saw\nupstreamTransport: %s\nhttp.Transport:    %s", what, describeSeen(seenNew, false), describeSeen(seenCtl, false))
	}
	// The site's headers reach the final answer even after a relayed
	// 1xx, which makes ReverseProxy clear the header map (logWriter puts
	// them back).
	for _, v := range []struct {
		name string
		got  diffView
	}{{"upstreamTransport", gotNew}, {"http.Transport", gotCtl}} {
		for _, k := range siteHeaderKeys {
			if v.got.Err == "" && v.got.Header.Get(k) == "" {
				t.Errorf("%s: %s's answer lacks the site's %s", what, v.name, k)
			}
		}
	}
	if answerName(tc.path) == "headbody" && tc.method == http.MethodHead {
		// The upstream sends a body with its HEAD answer. http.Transport
		// may take those bytes for the answer to the next request on
		// the connection (it checks for unasked bytes from a goroutine
		// that races with the next request) and answer 502; the only
		// right answer is the 200 without a body.
		if gotNew.Status != http.StatusOK || len(gotNew.Body) != 0 {
			t.Errorf("%s: upstreamTransport: %s, want 200 without a body", what, describeView(gotNew, false))
		}
		if gotCtl.Status != http.StatusOK {
			t.Logf("%s: http.Transport answered %d (took the HEAD answer's body for the next answer)", what, gotCtl.Status)
			return
		}
	}
	normalizeDiff(tc, &gotNew, &gotCtl)
	if describeView(gotNew, true) != describeView(gotCtl, true) {
		t.Errorf("%s: the client saw\nupstreamTransport: %s\nhttp.Transport:    %s", what, describeView(gotNew, false), describeView(gotCtl, false))
	}
}

// acceptedDiff checks the answers whose difference is deliberate, and
// reports whether it did. upstreamTransport bounds the answer head of an
// upstream more tightly than http.Transport:
//
//   - hugehead: a 1.1 MB response head, over maxResponseHead (1 MiB):
//     upstreamTransport answers 502, http.Transport (10 MiB) passes it.
func acceptedDiff(t *testing.T, what string, tc *diffCase, gotNew, gotCtl diffView) bool {
	t.Helper()
	switch answerName(tc.path) {
	case "hugehead":
		if gotNew.Status != http.StatusBadGateway {
			t.Errorf("%s: upstreamTransport: %s, want 502", what, describeView(gotNew, false))
		}
		if gotCtl.Status != http.StatusOK {
			t.Errorf("%s: http.Transport: %s, want 200", what, describeView(gotCtl, false))
		}
	default:
		return false
	}
	return true
}

// siteHeaderKeys are headers every answer of a site carries (buildHeaders).
var siteHeaderKeys = []string{"Referrer-Policy", "X-Content-Type-Options"}

// streamID matches the stream ID in an HTTP/2 client error.
var streamID = regexp.MustCompile(`stream ID \d+`)

// sniffedAnswers are upstream answers without Content-Type and without a
// length. ReverseProxy flushes such an answer's head from a timer
// goroutine (flushInterval -1, "set up initial timer so headers get
// flushed") racing with its first body write; when the write wins,
// net/http's server sniffs a Content-Type from the first bytes. Either
// transport may win or lose the race, so Content-Type is not compared.
var sniffedAnswers = map[string]bool{"trailers": true, "undeclared": true, "tecl": true, "tecl-long": true,
	"http10-chunked": true, "te-identity": true, "truncated-chunked": true}

// normalizeDiff removes the differences between the two transports that
// are not bugs of upstreamTransport:
//
//   - Date is the time of each answer.
//   - An upstream's 100 Continue: http.Transport hands it to the
//     ReverseProxy's Got1xxResponse, which relays it to the client, so a
//     client that sent Expect: 100-continue gets a second 100 Continue
//     after the one our server sent when bufferBody read the body;
//     upstreamTransport takes it (the body went with the head). A
//     client must parse any number of 1xx answers (RFC 9110 §15.2), and
//     the body was already read: the extra 100 tells the client
//     nothing.
//   - Content-Type of sniffedAnswers.
//   - The order of the names in a Trailer header: ReverseProxy writes
//     them in map order.
//   - HTTP/2 stream IDs in client errors: they count the client's
//     requests, which differ by the uncompared ones sent to settle the
//     control after headbody.
func normalizeDiff(tc *diffCase, a, b *diffView) {
	for _, v := range []*diffView{a, b} {
		v.Err = streamID.ReplaceAllString(v.Err, "stream ID N")
		delete(v.Header, "Date")
		v.Interim = slices.DeleteFunc(v.Interim, func(c int) bool { return c == http.StatusContinue })
		if sniffedAnswers[answerName(tc.path)] && v.Header.Get("Content-Type") == "text/plain; charset=utf-8" {
			delete(v.Header, "Content-Type")
		}
		if tr := v.Header.Values("Trailer"); tr != nil {
			var names []string
			for _, s := range tr {
				for n := range strings.SplitSeq(s, ",") {
					names = append(names, http.CanonicalHeaderKey(strings.TrimSpace(n)))
				}
			}
			slices.Sort(names)
			v.Header["Trailer"] = []string{strings.Join(names, ", ")}
		}
	}
}

// describeView, describeSeen and describeHeader write what was seen as
// text: in full to compare, abbreviated to show.
func describeView(v diffView, full bool) string {
	if v.Err != "" {
		return "error " + v.Err
	}
	return fmt.Sprintf("%d interim %v header %s body %s trailer %s", v.Status, v.Interim, describeHeader(v.Header, full), short(v.Body, full), describeHeader(v.Trailer, full))
}

func describeSeen(ss []diffSeen, full bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests", len(ss))
	for _, s := range ss {
		body := "(unread)"
		if s.Body != nil {
			body = short(s.Body, full)
		}
		fmt.Fprintf(&b, "; %s %s %s Host %q header %s length %d te %v body %s trailer %s head %s", s.Method, s.RequestURI, s.Proto, s.Host,
			describeHeader(s.Header, full), s.ContentLength, s.TransferEncoding, body, describeHeader(s.Trailer, full), short(s.Head, full))
	}
	return b.String()
}

func describeHeader(h http.Header, full bool) string {
	keys := slices.Sorted(maps.Keys(h))
	var b strings.Builder
	b.WriteString("{")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %q; ", k, short([]byte(strings.Join(h[k], " | ")), full))
	}
	b.WriteString("}")
	return b.String()
}

// short quotes b, unless full abbreviating long values to their length
// and ends.
func short(b []byte, full bool) string {
	if full || len(b) <= 120 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%q…(%d bytes)…%q", b[:40], len(b), b[len(b)-40:])
}
