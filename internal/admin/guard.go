package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// The admin listener answers without authentication, and a web page in
// the browser of anyone on the machine can send it requests: the Host
// check (host.go) stops the page from reading the answers through DNS
// rebinding, but a page may still make the browser send requests whose
// effect is the harm: a CPU profile or an execution trace that runs for
// as long as the page likes (?seconds=), a garbage collection per request
// (heap?gc=1), a huge POST to /debug/pprof/symbol. These guards refuse
// what a browser sends on behalf of another site's page.

// crossSitePath reports whether another site's page may still open path
// as a top-level navigation (a link from a dashboard): the reads, which
// have no effect beyond the answer.
func crossSitePath(path string) bool {
	switch path {
	case "/", "/status", "/metrics", "/healthz":
		return true
	}
	return false
}

// fromOtherSite reports whether a browser sent r for a page of another
// origin (Sec-Fetch-Site, which browsers send to loopback and https
// addresses). A request without the header (curl, Prometheus, an old
// browser) or one the user made (typed, bookmarked) is not.
func fromOtherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// browserAllows reports whether r may be answered as far as the browser
// that sent it is concerned: a request of another site's page only when
// it is a top-level navigation (GET or HEAD) to a crossSitePath;
// never a subresource (img, script, fetch, form POST), a frame, or
// anything under /debug/pprof/.
func browserAllows(r *http.Request) bool {
	if !fromOtherSite(r) {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document" &&
		crossSitePath(r.URL.Path)
}

// refuseCrossSite answers a request another site's page made.
func refuseCrossSite(w http.ResponseWriter) {
	http.Error(w, "admin: refused a request made by another site's page: open this address directly", http.StatusForbidden)
}

// crossOrigin refuses, besides what browserAllows refuses, the
// cross-origin POSTs of browsers that send Origin but no Sec-Fetch-Site.
func crossOrigin(next http.Handler) http.Handler {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { refuseCrossSite(w) }))
	return c.Handler(next)
}

// maxSymbolBody bounds the body of POST /debug/pprof/symbol: the
// addresses of a profile, "+"-separated, which go tool pprof sends a few
// thousand at a time. pprof.Symbol reads the body to its end and holds
// its answer, about ten times the body, in memory.
const maxSymbolBody = 1 << 20

// bodyTimeout bounds the time a client may take to send the body of
// POST /debug/pprof/symbol, the only body the listener reads. The server
// has no ReadTimeout: its deadline, still set on the connection when a
// profile streams, would end ?seconds= profiles early.
const bodyTimeout = 10 * time.Second

// maxSymbolRequests bounds the POSTs to /debug/pprof/symbol answered at
// once: each holds its body and an answer of about six times its size
// (64 at once, one per connection, grew the process by 850 MB). go tool
// pprof sends them one at a time.
const maxSymbolRequests = 2

// symbol is pprof.Symbol with the body of a POST read first, up to
// maxSymbolBody within bodyTimeout (a larger one is refused with 413, a
// slower one with 408), and its answer written within bodyTimeout, by at
// most maxSymbolRequests requests at once.
func (h *Handler) symbol(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		pprof.Symbol(w, r)
		return
	}
	select {
	case h.symbols <- struct{}{}:
		defer func() { <-h.symbols }()
	case <-r.Context().Done():
		return
	}
	b, err := readBody(w, r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, "admin: request body too large", http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		http.Error(w, "admin: request body too slow", http.StatusRequestTimeout)
		return
	case err != nil:
		http.Error(w, "admin: read the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	// pprof.Symbol writes its answer in one piece, which a client that
	// does not read would hold, and a place of maxSymbolRequests with it.
	// The deadline stays on the connection, so it is not reused.
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(bodyTimeout))
	pprof.Symbol(w, r)
}

// readBody reads the body of r, up to maxSymbolBody within bodyTimeout.
// What it leaves unread is never read (dropBody).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(bodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("set the read deadline: %w", err)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSymbolBody))
	if err != nil {
		_ = rc.SetReadDeadline(time.Now())
		return nil, err
	}
	_ = rc.SetReadDeadline(time.Time{})
	return b, nil
}

// dropBody has the connection of a request with a body closed once it is
// answered, and what the handler leaves of the body never read. Only
// POST /debug/pprof/symbol reads one (readBody); after the others the
// server would read up to 256 KiB of it to reuse the connection, with no
// deadline, so that a client sending a byte at a time would hold the
// connection, and a file descriptor of the process serving the sites,
// for ever.
func dropBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
