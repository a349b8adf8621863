// Package server is the HTTP side of `tlspilot serve`: virtual hosts
// selected by SNI and Host that serve static files, proxy to upstreams
// or redirect, over HTTPS (HTTP/1.1 and HTTP/2) and plain HTTP, with a
// site table that is swapped atomically on reload.
//
// The package knows nothing of configuration files or ACME: the caller
// binds the listeners, passes plain Site values and hands in the ACME
// Manager's certificate and http-01 hooks.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/stapler"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// Defaults for Options.
const (
	DefaultDrainTimeout      = 30 * time.Second
	DefaultCertCheckInterval = 2 * time.Second
)

// Limits on client connections (docs/config.md, "Limits", compares
// them with nginx's).
const (
	readHeaderTimeout  = 10 * time.Second // the TLS handshake and the request headers, together
	idleTimeout        = 120 * time.Second
	maxHeaderBytes     = 64 << 10 // larger request headers get 431
	DefaultBodyTimeout = 60 * time.Second
	DefaultSendTimeout = 60 * time.Second
)

// Options configure a Server. The listeners are bound by the caller, so
// that privileges can be dropped before New; the Server owns them from
// then on and closes them on Shutdown. Either listener may be nil.
type Options struct {
	HTTPListener  net.Listener // plain HTTP: http-01, redirects to HTTPS, sites with HTTPRedirect false
	HTTPSListener net.Listener // TLS is done by the Server; http-01 and tls-alpn-01 too

	Sites []Site

	// ACMEHTTP makes the http-01 handler (the ACME Manager's
	// HTTPHandler). Both listeners hand it every GET and HEAD request
	// under /.well-known/acme-challenge/ before any site is looked up,
	// whatever the Host, the SNI or the kind of site: a CA that follows a
	// port-80 redirect to HTTPS (Let's Encrypt does) finds the answer
	// there too, and a proxy never forwards it. A 4xx answer (or a call
	// to next) means the token is not held: the response is dropped and
	// the request goes on to ChallengeDir, if set, then to its site as
	// any other, so a site's own files
	// under that path, or its upstream, still answer. Other requests
	// never reach it.
	ACMEHTTP func(next http.Handler) http.Handler

	// ChallengeDir is a directory of http-01 answers written by another
	// process as <ChallengeDir>/<token> (`tlspilot certs` with a
	// challenge_dir, certbot's webroot), answered on both listeners like
	// ACMEHTTP's, for requests ACMEHTTP has no answer for. A token outside
	// the base64url alphabet never becomes a file name; a file is served
	// only if it is a regular file (not a symbolic link) holding a key
	// authorization for its token, and is never written. Empty: none.
	ChallengeDir string

	// ACMEGetCertificate answers tls-alpn-01 handshakes (ClientHellos
	// offering only the "acme-tls/1" protocol). Nil refuses them.
	ACMEGetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// Stapler staples OCSP responses to the certificates of sites that
	// do not set Site.NoOCSPStapling; nil staples none.
	Stapler *stapler.Stapler

	Logger    *slog.Logger // nil: discard
	AccessLog *slog.Logger // one Info line per request; nil: none

	// DrainTimeout bounds the graceful shutdown of Serve; connections
	// still busy after it are closed. Default DefaultDrainTimeout.
	DrainTimeout time.Duration

	// CertCheckInterval is how often certificate files and static roots
	// are checked for changes. Default DefaultCertCheckInterval.
	CertCheckInterval time.Duration

	// FileCacheBytes bounds the memory holding small static files (up to
	// 256 KiB each), shared by all roots. Default DefaultFileCacheBytes;
	// negative turns the cache off.
	FileCacheBytes int64

	// BodyTimeout is the longest a client may send nothing of a
	// request body it announced (HTTP/1 and HTTP/2): the request then
	// ends with 408 (nginx's client_body_timeout). Default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration

	// SendTimeout is the longest a response may make no progress: a
	// client that reads nothing for it is dropped (nginx's
	// send_timeout), on HTTP/1 connections and HTTP/2 streams and
	// connections alike. Default DefaultSendTimeout.
	SendTimeout time.Duration

	// MaxConnections caps the client connections of both listeners
	// together; at the cap an idle keep-alive connection makes room,
	// else the new one is closed. Default: derived from the file
	// descriptor limit (half of RLIMIT_NOFILE less 128).
	MaxConnections int

	// RedirectPort is the port put in HTTP→HTTPS redirects; 0 takes the
	// HTTPS listener's port (omitted when it is 443). Set it when a
	// port mapping sits in front of the listener.
	RedirectPort int
}

// Server serves the sites of its current table on the two listeners.
// Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	acmeCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	reject   *tls.Config
	tlsBase  *tls.Config // the listener's; sites with ClientAuth clone it (or their profile's)
	refusals refusalCounts
	profiles map[tlsprofile.Profile]*tls.Config // other than the default; never changed after New
	table    atomic.Pointer[table]
	env      *proxyEnv
	access   *accessLog
	budget   *cacheBudget // nil: no file cache
	limit    *connLimit
	port     string // ":8443" in HTTPS redirects, "" for 443

	// challenges answer http-01 requests, tried in turn: the ACME hook,
	// then the challenge directory. Never changed after New.
	challenges []http.Handler

	mu sync.Mutex // serialises Reload; guards roots reuse

	http, https *http.Server
	baseCtx     context.Context
	cancelBase  context.CancelFunc
	started     atomic.Bool
	stopOnce    sync.Once
	stop        chan struct{}
}

// New checks and compiles opts.Sites (opening static roots and loading
// certificate files) and returns a Server ready to Serve. Nothing is
// served before Serve. On error the listeners stay the caller's.
func New(opts Options) (*Server, error) {
	if opts.HTTPListener == nil && opts.HTTPSListener == nil {
		return nil, errors.New("server: no listener")
	}
	opts = opts.withDefaults()
	bufs := newBufferPool()
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		acmeCert: opts.ACMEGetCertificate,
		reject:   rejectConfig(),
		env: &proxyEnv{
			transport: newUpstreamTransport(newTransport()),
			bufs:      bufs,
			log:       opts.Logger,
			errLog:    slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug), // ReverseProxy's lines; answerBody logs what they say, with context
			clientLog: newRateLog(opts.Logger, slog.LevelInfo, time.Second),
		},
		access: &accessLog{log: opts.AccessLog, bufs: bufs, sendTimeout: opts.SendTimeout, bodyTimeout: opts.BodyTimeout},
		limit:  newConnLimit(opts.MaxConnections, opts.SendTimeout, opts.Logger),
		port:   redirectPort(opts),
		stop:   make(chan struct{}),
	}
	if opts.FileCacheBytes > 0 {
		s.budget = &cacheBudget{max: opts.FileCacheBytes}
	}
	if err := s.challengeHandlers(); err != nil {
		return nil, err
	}
	tc := s.tlsConfig()
	s.profiles = profileConfigs(tc)
	s.tlsBase = tc
	t, err := s.compile(opts.Sites, nil)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.http = s.newHTTPServer(s.access.wrap(http.HandlerFunc(s.servePlain)))
	s.https = s.newHTTPServer(s.access.wrap(http.HandlerFunc(s.serveTLS)))
	s.https.TLSConfig = tc
	return s, nil
}

// challengeHandlers builds the http-01 answerers: the ACME hook (over
// notHeld), then the challenge directory.
func (s *Server) challengeHandlers() error {
	if s.opts.ACMEHTTP != nil {
		s.challenges = append(s.challenges, s.opts.ACMEHTTP(http.HandlerFunc(notHeld)))
	}
	if dir := s.opts.ChallengeDir; dir != "" {
		// dir/. needs search permission on dir itself, as serving its
		// files does; it fails if dir is not a directory.
		if _, err := os.Stat(dir + string(filepath.Separator) + "."); err != nil {
			return fmt.Errorf("challenge dir: %w", err)
		}
		s.challenges = append(s.challenges, &challengeDir{dir: dir, log: s.log})
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.CertCheckInterval <= 0 {
		o.CertCheckInterval = DefaultCertCheckInterval
	}
	if o.FileCacheBytes == 0 {
		o.FileCacheBytes = DefaultFileCacheBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = defaultMaxConnections()
	}
	return o
}

func redirectPort(opts Options) string {
	port := opts.RedirectPort
	if port == 0 && opts.HTTPSListener != nil {
		if a, ok := opts.HTTPSListener.Addr().(*net.TCPAddr); ok {
			port = a.Port
		}
	}
	if port == 0 || port == 443 {
		return ""
	}
	return ":" + strconv.Itoa(port)
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		// Per request on HTTP/1, per stream on HTTP/2, pushed forward
		// as the response makes progress (deadline.go).
		WriteTimeout:   s.opts.SendTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ConnState:      s.limit.connState,
		// A connection whose socket takes no byte for SendTimeout fails
		// its write, whichever stream is waiting: limitConn arms the
		// socket's deadline lazily (HTTP2Config.WriteByteTimeout would
		// re-arm it on every write).
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return s.baseCtx },
		ConnContext: withConn,
	}
}

// Serve serves both listeners until ctx ends, then shuts down
// gracefully within Options.DrainTimeout. It returns nil after a clean
// drain, or the error that stopped a listener. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	errc := make(chan error, 2)
	n := 0
	if l := s.opts.HTTPListener; l != nil {
		n++
		go func() { errc <- s.http.Serve(s.limit.listener(l)) }()
	}
	if l := s.opts.HTTPSListener; l != nil {
		n++
		go func() { errc <- s.https.ServeTLS(s.limit.listener(l), "", "") }()
	}
	go s.watch()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		n--
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	shutErr := s.Shutdown(dctx)
	for ; n > 0; n-- {
		if e := <-errc; err == nil {
			err = e
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, shutErr)
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// active requests to finish; then it closes what remains, including
// upgraded (WebSocket) connections, and the static roots.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, hs := range []*http.Server{s.http, s.https} {
		wg.Go(func() {
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
				errs[i] = fmt.Errorf("drain: %w", err)
			}
		})
	}
	wg.Wait()
	s.env.transport.Close()
	s.cancelBase()
	for _, l := range []net.Listener{s.opts.HTTPListener, s.opts.HTTPSListener} {
		if l != nil {
			l.Close()
		}
	}
	s.mu.Lock()
	for _, d := range s.table.Load().roots {
		d.retire(0)
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Reload replaces the site table. New handshakes and requests see the
// new sites at once; requests in flight finish with the sites they
// started with. If sites do not compile, Reload returns the error and
// the running table stays.
func (s *Server) Reload(sites []Site) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		return errors.New("server: reload after shutdown")
	default:
	}
	old := s.table.Load()
	t, err := s.compile(sites, old)
	if err != nil {
		return err
	}
	s.table.Store(t)
	for p, d := range old.roots {
		if t.roots[p] != d {
			d.retire(retireGrace)
		}
	}
	s.log.Info("sites reloaded", "sites", len(t.sites))
	return nil
}

// watch checks certificate files and static roots of the current table
// until Shutdown.
func (s *Server) watch() {
	tk := time.NewTicker(s.opts.CertCheckInterval)
	defer tk.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tk.C:
		}
		t := s.table.Load()
		for _, fc := range t.certs {
			fc.check(s.log)
		}
		s.rotateTicketKeys(t)
		for _, d := range t.roots {
			d.check(s.log)
		}
	}
}
