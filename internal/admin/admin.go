// Package admin is tlspilot's admin listener: an http.Handler that
// serves, for the people and systems that watch a running daemon,
//
//	GET /healthz        200 "ok" while serving
//	GET /status         the status document (tlspilot.StatusReport) as JSON, with the server's client-certificate refusals and OCSP staples
//	GET /               an HTML status page, self-contained, refreshing itself
//	GET /metrics        Prometheus text exposition (see Metrics and metrics.go)
//	GET /debug/pprof/   the runtime profiles of net/http/pprof
//
// It answers without authentication: the command listens on loopback
// unless told otherwise. A request whose Host is not an IP literal,
// localhost or the name of Options.Listen is refused with 403 on every
// path (DNS rebinding; see host.go). A request a browser sends for
// another site's page is refused too, except a link to /, /status,
// /metrics or /healthz, so that no web page can start profiles or POST
// to the listener (guard.go).
package admin

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/tlspilot/tlspilot"
)

// Source is what the admin listener reports on; *tlspilot.Manager is
// one. Both methods are called from request goroutines, concurrently.
type Source interface {
	// Status reports every managed certificate, sorted by urgency. It
	// is called at every scrape of /metrics and must not do I/O.
	Status() []tlspilot.CertStatus
	// Report returns the status document, for /status and the page.
	Report(ctx context.Context) tlspilot.StatusReport
}

// Options configures a Handler.
type Options struct {
	// Source is the Manager reported on. Required.
	Source Source
	// Metrics receives the Manager's measurements and events (pass it
	// as tlspilot.Config.Metrics and call its Event from OnEvent); nil
	// means a new one, whose counters then stay at zero.
	Metrics *Metrics
	// Refresh is how often the HTML page reloads itself. Default 30s.
	Refresh time.Duration
	// Logger receives failures to answer; nil discards them.
	Logger *slog.Logger
	// Listen is the address the listener was configured with
	// ("127.0.0.1:2019", "admin.internal:2019", ":2019"). Requests may
	// name in Host an IP literal, localhost, its host when that is a
	// name, and the machine's name (os.Hostname) when it is every
	// interface; any other Host is refused with 403 Forbidden. Empty
	// allows IP literals and localhost only.
	Listen string
	// Hosts are further names allowed in Host (admin_hosts): those a
	// reverse proxy in front passes on.
	Hosts []string
}

// Handler serves the admin endpoints. It is safe for concurrent use.
type Handler struct {
	mux     *http.ServeMux
	next    http.Handler // mux behind the cross-origin check
	tmpl    *template.Template
	src     Source
	metrics *Metrics
	log     *slog.Logger
	refresh time.Duration
	hosts   hostPolicy
	symbols chan struct{} // a place per POST /debug/pprof/symbol answered (maxSymbolRequests)
}

// New returns the admin Handler for opts. It fails only when opts are
// incomplete or a Metrics is passed to a second Handler.
func New(opts Options) (*Handler, error) {
	if opts.Source == nil {
		return nil, errors.New("admin: Options.Source is required")
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := pageTemplate()
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	h := &Handler{mux: http.NewServeMux(), tmpl: tmpl, src: opts.Source, metrics: opts.Metrics, log: opts.Logger, refresh: opts.Refresh,
		hosts: newHostPolicy(opts.Listen, opts.Hosts), symbols: make(chan struct{}, maxSymbolRequests)}
	metrics, err := newExposition(opts.Source, opts.Metrics, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	h.mux.HandleFunc("GET /healthz", healthz)
	h.mux.HandleFunc("GET /status", h.status)
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.Handle("GET /metrics", metrics)
	h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("GET /debug/pprof/symbol", h.symbol)
	h.mux.HandleFunc("POST /debug/pprof/symbol", h.symbol)
	h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	h.next = crossOrigin(h.mux)
	return h, nil
}

// ServeHTTP answers one admin request, or refuses it with 403 when its
// Host is not allowed (Options.Listen) or when a browser sent it for
// another site's page other than as a link to /, /status, /metrics or
// /healthz (guard.go). No answer may be cached or framed.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	dropBody(w, r)
	if !h.hosts.allows(r.Host) {
		refuse(w)
		return
	}
	if !browserAllows(r) {
		refuseCrossSite(w)
		return
	}
	h.next.ServeHTTP(w, r)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// status writes the status document: 200 when it could be made, 503
// when the storage could not be read (status UNKNOWN), so a plain HTTP
// check notices too.
func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	rep := h.src.Report(r.Context())
	h.metrics.addServer(&rep, time.Now())
	w.Header().Set("Content-Type", "application/json")
	if rep.ExitCode == tlspilot.ExitUnknown {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if err := writeReport(w, rep); err != nil {
		h.log.Debug("admin: write /status", "error", err)
	}
}

// MaxConns is how many connections Serve keeps open at once: scrapers,
// browsers and profiles need a few. At the cap a new connection takes
// the place of the one idle the longest (keep-alive, or silent for a
// second since it connected); with none idle, further clients wait in
// the listen backlog, which holds no file descriptor of the process, so
// a client opening connections without end cannot take from the HTTPS
// server the descriptors its upstream connections and storage need, nor
// lock scrapers out by keeping its connections open.
const MaxConns = 64

// Serve serves h on l until ctx ends, then stops accepting, waits up to
// 5 seconds for the requests in flight and returns nil. It closes l. Any
// other error ends it early. It keeps at most MaxConns connections
// open at once.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	capped := newConnCap(l, MaxConns)
	srv := &http.Server{
		Handler:           h,
		ConnState:         capped.connState,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Profiles stream for as long as ?seconds= says; writes are
		// bounded by the client going away, not by a timeout. Bodies
		// are bounded by the Handler (guard.go).
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(capped) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}
