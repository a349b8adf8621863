package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream connection limits. One Transport is shared by every proxy of
// a Server, so idle keep-alive connections are reused across reloads.
const (
	dialTimeout           = 10 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxIdlePerHost        = 256
	downFor               = 10 * time.Second // an upstream that refused a connection is skipped this long
)

func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true, // pass the client's Accept-Encoding through untouched
	}
}

// proxyEnv is what every proxy of a Server shares.
type proxyEnv struct {
	transport    *upstreamTransport
	bufs         *bufferPool
	log          *slog.Logger
	errLog       *log.Logger
	clientLog    *rateLog      // client errors: info, at most one a second
	clientErrors atomic.Uint64 // requests the client broke off or spoiled
}

// proxy forwards to a set of upstreams round-robin. An upstream that
// refuses a connection is skipped for a while (passive health), and a
// request without a body is tried on the next upstream at once: it was
// never sent.
type proxy struct {
	rp      httputil.ReverseProxy
	ups     []*upstream
	next    atomic.Uint32
	tr      http.RoundTripper
	hdrs    proxyHeaders // what becomes of the site's headers
	trusted []netip.Prefix
	ident   upstreamIdentity
	env     *proxyEnv
	log     *slog.Logger
}

type upstream struct {
	url       *url.URL
	downUntil atomic.Int64 // unix nanoseconds
}

func newProxy(targets []string, ptls ProxyTLS, hdrs proxyHeaders, trusted []netip.Prefix, ident upstreamIdentity, env *proxyEnv) (*proxy, error) {
	p := &proxy{tr: env.transport, hdrs: hdrs, trusted: trusted, ident: ident, env: env, log: env.log}
	cfg, err := ptls.clientConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		// A transport of this proxy's own, for its TLS settings; a
		// reload makes a new one, and the old one's idle connections
		// close after idleConnTimeout.
		tr := newTransport()
		tr.TLSClientConfig = cfg
		tr.MaxResponseHeaderBytes = maxResponseHead
		p.tr = tr
	}
	for _, t := range targets {
		u, err := parseUpstream(t)
		if err != nil {
			return nil, err
		}
		if len(p.ups) > 0 && basePath(u.Path) != basePath(p.ups[0].url.Path) {
			return nil, fmt.Errorf("proxy %s: all upstreams of one handler must have the same path", t)
		}
		p.ups = append(p.ups, &upstream{url: u})
	}
	p.rp = httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p,
		BufferPool:     env.bufs,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.fail,
		ErrorLog:       env.errLog,
	}
	return p, nil
}

func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("proxy %q: want http:// or https:// and a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy %q: no query or fragment allowed", s)
	}
	return u, nil
}

// basePath is an upstream URL's path as requests are put under it: ""
// and "/" both add nothing (httputil.ProxyRequest.SetURL).
func basePath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// ServeHTTP reads the start of a request body before an upstream is
// dialled (see bufferBody), then proxies.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		// Not a request for the upstream's resources: forwarded, an
		// upstream that tunnels CONNECT would open one from its own
		// network for any client (HTTP/2's extended CONNECT included).
		http.Error(w, "501 CONNECT is not proxied", http.StatusNotImplemented)
		return
	}
	if !validForUpstream(r) {
		http.Error(w, "400 bad request", http.StatusBadRequest)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		// Not pooled: the transport may read the body after ServeHTTP.
		size := int64(bodyBufferSize)
		if r.ContentLength >= 0 && r.ContentLength < size {
			size = r.ContentLength + 1 // +1 sees the end
		}
		if err := bufferBody(w, r, make([]byte, size)); err != nil {
			p.clientFail(w, r, err)
			return
		}
	}
	if lw, ok := w.(*logWriter); ok {
		lw.pauseWrites() // until the upstream answers: its timeout gives 504
		lw.yieldDefaults()
	}
	p.rp.ServeHTTP(w, r)
}

// validForUpstream reports whether r can be sent upstream as it means
// to the proxy. Its method must be a token and its query free of spaces
// and control characters: both go into the request line as they are
// (Request.Write), and net/http's HTTP/2 server checks neither (its
// HTTP/1 server refuses both), so an HTTP/2 client could write
// ":method: GET /admin/x HTTP/1.1" or a query "?x /admin/x" into the
// upstream's request line, past the path that routes and require_paths
// matched. (The path is escaped when written.) Its target must not be
// opaque ("x:admin/secret", which both servers take): routed as "/", it
// went up as it was, without the upstream URL's path ("GET admin/secret
// HTTP/1.1"). And the path it is sent with must not have a dot segment
// in a reading upstreams make of it that cleanPath does not (see
// hiddenDotSegment).
func validForUpstream(r *http.Request) bool {
	if !validHeaderName(r.Method) || r.URL.Opaque != "" { // a token, as a field name is
		return false
	}
	q := r.URL.RawQuery
	for i := 0; i < len(q); i++ {
		if q[i] <= ' ' || q[i] == 0x7f {
			return false
		}
	}
	p := r.URL.Path
	if hasDotSegment(p) {
		p = cleanPath(p) // as cleanDotSegments sends it
	}
	return !hiddenDotSegment(p)
}

// hiddenDotSegment reports whether the decoded path p has a "." or ".."
// segment as some upstreams read it, and cleanPath does not: with '\'
// for '/' (IIS and ASP.NET on Windows: "/x\..\..\secret"), with each
// segment's path parameters removed (Tomcat, Jetty and Spring take
// "/x/..;/admin" for "/admin", the "..;" bypass), cut at a NUL (C
// strings: "/x/..%00/admin"), or with the overlong UTF-8 forms of '.',
// '/' and '\' decoded ("%c0%ae%c0%ae", read as ".." by old IIS and
// Tomcat). Such a path would climb, in the upstream, out of the path
// routes and require_paths matched.
func hiddenDotSegment(p string) bool {
	if !hasOtherReading(p) {
		return false // the common path
	}
	p = overlongASCII.Replace(p)
	p = strings.ReplaceAll(p, `\`, "/")
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if i := strings.IndexAny(seg, ";\x00"); i >= 0 {
			seg = seg[:i]
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// hasOtherReading reports whether p has a byte that hiddenDotSegment
// reads otherwise: '\', ';', NUL or the first byte of an overlong form.
func hasOtherReading(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\', ';', 0, 0xc0, 0xc1, 0xe0, 0xf0:
			return true
		}
	}
	return false
}

// overlongASCII replaces the overlong UTF-8 encodings of '.', '/' and
// '\' (two, three and four bytes) with the character.
var overlongASCII = strings.NewReplacer(
	"\xc0\xae", ".", "\xc0\xaf", "/", "\xc1\x9c", `\`,
	"\xe0\x80\xae", ".", "\xe0\x80\xaf", "/", "\xe0\x81\x9c", `\`,
	"\xf0\x80\x80\xae", ".", "\xf0\x80\x80\xaf", "/", "\xf0\x80\x81\x9c", `\`,
)

// rewrite sends the request to the next upstream with the client's Host
// and X-Forwarded-For/-Host/-Proto set by us. ReverseProxy drops inbound
// Forwarded and X-Forwarded-For/-Host/-Proto before Rewrite runs; the
// other headers upstreams take a client's identity or URL from are
// dropped here. From a trusted proxy they all pass, and the client
// address is appended to its X-Forwarded-For. Client identity headers
// are never taken from the client, a trusted proxy included: they are
// removed, and set afresh on sites with ClientAuth.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	if pb, ok := pr.In.Body.(*prefixBody); ok && pb.rest == nil && pr.Out.Body != nil {
		pr.Out.Body = &wholeBody{Reader: bytes.NewReader(pb.whole), b: pb.whole} // resendable (RoundTrip)
	}
	cleanDotSegments(pr.Out.URL)
	if pr.Out.Body != nil && bodyIgnoredBy(pr.Out.Method) {
		pr.Out.Close = true // see bodyIgnoredBy
	}
	pr.SetURL(p.pick().url)
	pr.Out.Host = pr.In.Host
	dropHTTP2Upgrade(pr.Out.Header)
	p.ident.rewrite(pr.Out.Header, pr.In.TLS)
	dropUnderscoreAliases(pr.Out.Header)
	if p.isTrusted(pr.In.RemoteAddr) {
		for _, k := range forwardingHeaders {
			if v, ok := pr.In.Header[k]; ok {
				pr.Out.Header[k] = v
			}
		}
		setXForwarded(pr)
		return
	}
	for _, k := range untrustedHeaders {
		delete(pr.Out.Header, k)
	}
	pr.SetXForwarded()
}

// cleanDotSegments gives u, a request's URL, the path it was routed on
// (cleanPath: decoded, "." and ".." resolved, slashes folded) when its
// decoded path has a "." or ".." segment. Sent as the client wrote it,
// "/app/x/../../secret" or "/admin/..%2fx" would mean to the upstream
// another path than the one routes and require_paths matched, and a
// dot segment could climb out of the upstream URL's own path. A path
// without one passes as written, encoded slashes and "//" included; one
// with one keeps the encoding of the segments left (see cleanEscaped),
// so that "/a/../b%2Fc" goes up as "/b%2Fc", not "/b/c".
func cleanDotSegments(u *url.URL) {
	if !hasDotSegment(u.Path) {
		return
	}
	raw := cleanEscaped(u.EscapedPath())
	u.Path = cleanPath(u.Path)
	u.RawPath = ""
	if p, err := url.PathUnescape(raw); err == nil && p == u.Path && raw != u.EscapedPath() {
		u.RawPath = raw
	}
}

// cleanEscaped is cleanPath on an escaped path p, with "%2F" read as a
// slash where it delimits a dot segment or an empty one, and kept as it
// is between the segments left. Decoded, it is cleanPath of p decoded.
func cleanEscaped(p string) string {
	type segment struct{ sep, s string }
	var kept []segment // with the separator before each
	trailing := false
	for p != "" {
		sep := 0
		if p[0] == '/' {
			sep = 1
		} else if isEscapedSlash(p) {
			sep = 3
		}
		end := sep
		for end < len(p) && p[end] != '/' && !isEscapedSlash(p[end:]) {
			end++
		}
		seg := p[sep:end]
		trailing = seg == ""
		switch d, _ := url.PathUnescape(seg); d {
		case "", ".":
		case "..":
			if len(kept) > 0 {
				kept = kept[:len(kept)-1]
			}
		default:
			kept = append(kept, segment{p[:sep], seg})
		}
		p = p[end:]
	}
	if len(kept) == 0 {
		return "/"
	}
	var b strings.Builder
	for i, sg := range kept {
		if i == 0 || sg.sep == "" {
			b.WriteByte('/') // the first separator a plain one
		} else {
			b.WriteString(sg.sep)
		}
		b.WriteString(sg.s)
	}
	if trailing {
		b.WriteByte('/')
	}
	return b.String()
}

// isEscapedSlash reports whether p starts with "%2F" or "%2f".
func isEscapedSlash(p string) bool {
	return len(p) >= 3 && p[0] == '%' && p[1] == '2' && (p[2] == 'F' || p[2] == 'f')
}

// hasDotSegment reports whether the decoded path p has a "." or ".."
// segment.
func hasDotSegment(p string) bool {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// bodyIgnoredBy reports whether upstreams commonly ignore the body of a
// request with method, whose content has no defined meaning (RFC 9110
// §9.3: GET, HEAD, DELETE, OPTIONS; TRACE may have none). An upstream
// that answers without reading it and keeps its connection (the "CL.0"
// desync) takes the body for the start of the next request on that
// connection: a body "GET /x HTTP/1.1\r\nX-Ignore: " made the next
// client's request, another client's on a pooled connection, get the
// answer to /x. Such a request is sent with Connection: close, and its
// connection is not pooled, on both transports.
func bodyIgnoredBy(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// dropHTTP2Upgrade removes an upgrade to HTTP/2 from a request (RFC
// 9110 §7.8: an upgrade may be ignored). An upstream switching to h2c
// would give the client a raw HTTP/2 connection to it, past routes,
// require_paths and the headers set here ("h2c smuggling"); h2c is for
// cleartext connections only, and "h2" is never valid in Upgrade (RFC
// 9113 §3.1). HTTP2-Settings, which belongs to that upgrade, goes too.
// Other protocols offered beside it ("websocket, h2c") are kept, so the
// upgrade goes on without HTTP/2; with none left, Upgrade goes, and
// Connection with it (ReverseProxy has set it to "Upgrade" alone), and
// the request goes up as a plain one.
func dropHTTP2Upgrade(h http.Header) {
	delete(h, "Http2-Settings")
	vs, ok := h["Upgrade"]
	if !ok {
		return
	}
	var kept []string
	dropped := false
	for _, v := range vs {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			switch {
			case strings.EqualFold(tok, "h2c"), strings.EqualFold(tok, "h2"), hasPrefixFold(tok, "http/2"):
				dropped = true
			case tok != "":
				kept = append(kept, tok)
			}
		}
	}
	switch {
	case !dropped:
	case len(kept) > 0:
		h["Upgrade"] = []string{strings.Join(kept, ", ")}
	default:
		delete(h, "Upgrade")
		delete(h, "Connection")
	}
}

// untrustedHeaders are request headers that upstreams commonly trust
// for the client's address, scheme, port or URL, or for the user an
// authenticating proxy in front of them logged in (Apache's and
// Grafana's Remote-User, oauth2-proxy's X-Forwarded-User and
// X-Auth-Request-*), removed unless the client is a trusted proxy.
var untrustedHeaders = [...]string{
	"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip",
	"X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Server", "X-Url-Scheme", "Front-End-Https",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Forwarded-Prefix", "X-Forwarded-Uri",
	"Remote-User", "X-Remote-User", "X-Remote-Group", "X-Webauth-User", "X-Forwarded-User", "X-Forwarded-Email",
	"X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Auth-Request-User", "X-Auth-Request-Email",
	"X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups",
}

// forwardingHeaders are the headers ReverseProxy replaces with its own.
var forwardingHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// dropUnderscoreAliases removes every header whose name, with '_' read
// as '-', is a forwarding header or one of untrustedHeaders, from
// anyone, a trusted proxy included: CGI, FastCGI and many WSGI servers
// give both spellings one variable (HTTP_X_REAL_IP), so "X_Real_IP"
// would pass for the "X-Real-IP" removed or set here. (nginx drops every
// header with '_' by default; client identity headers are matched the
// same way, in upstreamIdentity.rewrite.)
func dropUnderscoreAliases(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))
		if slices.Contains(forwardingHeaders[:], name) || slices.Contains(untrustedHeaders[:], name) {
			delete(h, k)
		}
	}
}

// setXForwarded is ProxyRequest.SetXForwarded keeping a trusted proxy's
// X-Forwarded-Host and -Proto.
func setXForwarded(pr *httputil.ProxyRequest) {
	host, proto := pr.Out.Header["X-Forwarded-Host"], pr.Out.Header["X-Forwarded-Proto"]
	pr.SetXForwarded()
	if host != nil {
		pr.Out.Header["X-Forwarded-Host"] = host
	}
	if proto != nil {
		pr.Out.Header["X-Forwarded-Proto"] = proto
	}
}

func (p *proxy) isTrusted(remote string) bool {
	if len(p.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	mapped := netip.AddrFrom16(a.As16()) // for an IPv4 client, its IPv4-mapped form
	for _, pf := range p.trusted {
		if pf.Contains(a) || pf.Contains(mapped) { // a network written either way
			return true
		}
	}
	return false
}

// pick returns the next upstream round-robin, skipping those marked
// down unless all are.
func (p *proxy) pick() *upstream {
	if len(p.ups) == 1 {
		return p.ups[0]
	}
	if u := p.pickHealthy(); u != nil {
		return u
	}
	return p.ups[int(p.next.Add(1))%len(p.ups)]
}

func (p *proxy) pickHealthy() *upstream {
	n := len(p.ups)
	start := int(p.next.Add(1))
	var now int64
	for i := range n {
		u := p.ups[(start+i)%n]
		d := u.downUntil.Load()
		if d == 0 {
			return u
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if d <= now {
			return u
		}
	}
	return nil
}

// markDown takes host out of the rotation for downFor after err, a
// failure to connect, and logs it when it was up: once per downFor at
// most, so that a dead pool member is seen (nginx logs "connect()
// failed") without flooding the log.
func (p *proxy) markDown(host string, err error) {
	now := time.Now()
	for _, u := range p.ups {
		if u.url.Host != host {
			continue
		}
		if was := u.downUntil.Swap(now.Add(downFor).UnixNano()); was <= now.UnixNano() && len(p.ups) > 1 {
			p.log.Warn("proxy: upstream unreachable, out of rotation", "upstream", host,
				"for", downFor.String(), "error", err.Error())
		}
	}
}

// RoundTrip is the proxy's transport: the shared one, plus failover of
// requests that never reached an upstream (it could not be connected
// to), whatever their method, as nginx's proxy_next_upstream error does:
// nothing was sent. A request body is sent again only when it is whole
// in memory (bufferBody); a longer one, streamed, is not.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ours := p.tr.(*upstreamTransport); !ours {
		req = withInterimFilter(req) // upstreamTransport filters its own
	}
	body := req.Body
	resp, err := p.tr.RoundTrip(req)
	if err == nil || !isDialError(err) || req.Context().Err() != nil {
		// A dial the client broke off by leaving says nothing about the
		// upstream, and any other would fail at once with that context.
		return resp, err
	}
	p.markDown(req.URL.Host, err)
	hasBody := body != nil && body != http.NoBody
	if hasBody {
		if _, ok := resent(body); !ok {
			return nil, err
		}
	}
	for range len(p.ups) - 1 {
		u := p.pickHealthy()
		if u == nil {
			break
		}
		r2 := req.Clone(req.Context())
		r2.URL.Scheme, r2.URL.Host = u.url.Scheme, u.url.Host
		if hasBody {
			r2.Body, _ = resent(body)
		}
		resp, err = p.tr.RoundTrip(r2)
		if err == nil || !isDialError(err) || req.Context().Err() != nil {
			return resp, err
		}
		p.markDown(u.url.Host, err)
	}
	return nil, err
}

// withInterimFilter returns req with a client trace that removes the
// hop-by-hop fields from interim (1xx) answers before ReverseProxy
// passes them to the client, which it does with every field: RFC 9110
// §7.6.1 wants them gone, and on HTTP/2 a connection-specific field
// (Connection, Keep-Alive, Upgrade...) makes the message malformed (RFC
// 9113 §8.2.2). Trace hooks added to a context run before those already
// there (ReverseProxy's), on the same header map.
func withInterimFilter(req *http.Request) *http.Request {
	if trace := httptrace.ContextClientTrace(req.Context()); trace == nil || trace.Got1xxResponse == nil {
		return req
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			removeHopByHop(http.Header(h))
			return nil
		},
	}))
}

// hopHeaders are the hop-by-hop fields ReverseProxy removes from final
// answers (RFC 9110 §7.6.1, and the older Keep-Alive and
// Proxy-Connection).
var hopHeaders = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHop removes the hop-by-hop fields from h, and those its
// Connection field names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// modifyResponse removes the upstream's headers that the site's
// configuration sets, and gives a 101 answer the site's defaults it
// lacks: ReverseProxy writes a 101 from the upstream's headers without
// logWriter.WriteHeader, which puts them back on other answers.
func (p *proxy) modifyResponse(resp *http.Response) error {
	if resp.StatusCode < 100 {
		// http.Transport takes "HTTP/1.1 099" for a final answer;
		// WriteHeader would panic on it.
		return fmt.Errorf("upstream answered with status %03d", resp.StatusCode)
	}
	for _, k := range p.hdrs.keys {
		delete(resp.Header, k)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		for _, d := range p.hdrs.defaults {
			if _, ok := resp.Header[d.key]; !ok {
				resp.Header[d.key] = d.val
			}
		}
		return nil // ReverseProxy needs the body as it is, to tunnel through
	}
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &answerBody{ReadCloser: resp.Body, p: p, req: resp.Request}
	}
	return nil
}

// answerBody is an upstream's answer body on its way to the client. A
// read that fails is logged here, with the upstream, the path and the
// bytes received, as the client's error when the client went away (its
// request's context ended: the read was broken off for it) and as the
// upstream's otherwise. ReverseProxy's own line for it names neither
// upstream nor path, and blamed the upstream for every client that left
// mid-answer; it goes to debug (proxyEnv.errLog).
type answerBody struct {
	io.ReadCloser
	p      *proxy
	req    *http.Request // the request sent upstream
	n      int64         // bytes received
	failed bool
}

func (b *answerBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.n += int64(n)
	if err != nil && err != io.EOF && !b.failed {
		b.failed = true
		b.p.answerFailed(b.req, b.n, err)
	}
	return n, err
}

// answerFailed logs an answer body that could not be read whole: see
// answerBody.
func (p *proxy) answerFailed(req *http.Request, n int64, err error) {
	if req.Context().Err() != nil {
		p.env.clientErrors.Add(1)
		p.env.clientLog.Log("proxy: client error", slog.String("path", req.URL.Path), slog.String("remote", req.RemoteAddr),
			slog.Int64("bytes", n), slog.String("error", "client went away during the answer"))
		return
	}
	p.log.Warn("proxy: upstream answer cut", "upstream", req.URL.Host, "path", req.URL.Path, "bytes", n, "error", err)
}

// fail answers 502, or 504 when the upstream timed out. A failure the
// client caused (its body broke off, stalled or was malformed, or it
// went away) is the client's, not the upstream's: see clientFail.
func (p *proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	if cerr := clientBodyErr(w); cerr != nil {
		p.clientFail(w, r, cerr)
		return
	}
	if r.Context().Err() != nil {
		p.clientFail(w, r, err)
		return
	}
	code := http.StatusBadGateway
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		code = http.StatusGatewayTimeout
		p.log.Warn("proxy: upstream timed out", "upstream", r.URL.Host, "path", r.URL.Path, "error", err)
	default:
		p.log.Warn("proxy: upstream failed", "upstream", r.URL.Host, "path", r.URL.Path, "error", err)
	}
	http.Error(w, http.StatusText(code), code)
}

// clientFail answers (and logs in the access log) 400 for a malformed
// body, 408 for a stalled one and 499 for a client gone; it logs at info,
// at most once a second, and never blames the upstream.
func (p *proxy) clientFail(w http.ResponseWriter, r *http.Request, err error) {
	code := clientStatus(r, err)
	p.env.clientErrors.Add(1)
	p.env.clientLog.Log("proxy: client error", slog.Int("status", code), slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr), slog.String("error", err.Error()))
	if r.ProtoMajor == 1 && (code == http.StatusBadRequest || code == http.StatusRequestTimeout) {
		w.Header()["Connection"] = connectionClose // on HTTP/2 it would end the whole connection
	}
	if code == StatusClientClosed {
		w.WriteHeader(code)
		return
	}
	http.Error(w, http.StatusText(code), code)
}

// bufferBody reads the start of the request body, up to len(buf) bytes,
// before any upstream is dialled, as nginx's request buffering does for
// its first buffer: a client that sends headers and then stalls (or
// drips) its body never holds an upstream connection, and small bodies
// (forms, API calls) reach the upstream whole, so its connection is held
// only while it works. A larger body streams on after its first part;
// its upstream connection is then held as long as the client keeps
// sending, at least a byte every body timeout. The body becomes the
// buffered bytes followed by the rest.
func bufferBody(w http.ResponseWriter, r *http.Request, buf []byte) error {
	n, err := io.ReadFull(r.Body, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF && clientBodyErr(w) == nil:
		// The whole body: the upstream gets it with its length, and
		// another upstream again if the first cannot be connected to
		// (proxy.RoundTrip, resent).
		r.Body = &prefixBody{buf: buf[:n], whole: buf[:n], rest: nil, orig: r.Body}
		r.ContentLength = int64(n)
		r.TransferEncoding = nil
		return nil
	case err != nil:
		if cerr := clientBodyErr(w); cerr != nil {
			return cerr
		}
		return err
	}
	r.Body = &prefixBody{buf: buf[:n], rest: r.Body, orig: r.Body}
	return nil
}

// prefixBody is a request body whose first bytes were read ahead.
type prefixBody struct {
	buf   []byte
	whole []byte    // when rest is nil, the whole body, read or not
	rest  io.Reader // nil: buf is the whole body
	orig  io.ReadCloser
}

// wholeBody is the body of a proxied request when bufferBody read it
// whole: a transport that could not connect to one upstream sends it to
// the next from its start (resent). Close does nothing, as with
// ReverseProxy's own wrapper: the client's body is read already.
type wholeBody struct {
	*bytes.Reader
	b []byte
}

func (*wholeBody) Close() error { return nil }

// resent returns body again from its start, if it is a wholeBody, for a
// request sent to another upstream.
func resent(body io.ReadCloser) (io.ReadCloser, bool) {
	if wb, ok := body.(*wholeBody); ok {
		return &wholeBody{Reader: bytes.NewReader(wb.b), b: wb.b}, true
	}
	return nil, false
}

func (b *prefixBody) Read(p []byte) (int, error) {
	if len(b.buf) > 0 {
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	}
	if b.rest == nil {
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func (b *prefixBody) Close() error { return b.orig.Close() }

// bodyBufferSize is how much of a request body is read before an
// upstream is dialled (nginx's client_body_buffer_size is 8 or 16 KiB,
// and it buffers the rest to disk; we stream the rest).
const bodyBufferSize = 64 << 10

// bufSize is the copy buffer for proxied bodies and for file bodies on
// connections that cannot sendfile.
const bufSize = 32 << 10

// bufferPool recycles copy buffers. It stores array pointers so that
// Get and Put do not allocate.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([bufSize]byte) }}}
}

// Get returns a buffer of bufSize bytes.
func (b *bufferPool) Get() []byte { return b.p.Get().(*[bufSize]byte)[:] }

// Put returns a buffer obtained from Get.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufSize {
		b.p.Put((*[bufSize]byte)(buf[:bufSize]))
	}
}

var (
	_ httputil.BufferPool = (*bufferPool)(nil)
	_ http.RoundTripper   = (*proxy)(nil)
	_ http.Handler        = (*proxy)(nil)
)
