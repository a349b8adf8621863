package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleetca"
)

// The paths of the issuer's API.
const (
	// PathEnroll takes an enrolment token and a CSR, without a client
	// certificate, and returns the agent's first client certificate.
	PathEnroll = "/v1/enroll"
	// PathAgent returns what the issuer knows of the calling agent.
	PathAgent = "/v1/agent"
	// PathClientCert renews the calling agent's client certificate: a
	// CSR for its new key in, the certificate out (as PathEnroll).
	PathClientCert = "/v1/client-certificate"
	// PathHealth answers GET with 200 "ok" while the issuer can read its
	// registry's storage and 503 when it cannot, without a client
	// certificate: a load balancer's or a monitor's probe has none. It
	// says nothing more; the cause goes to the issuer's log.
	PathHealth = "/healthz"
)

// verifyTimeout bounds the storage lookup made for each handshake that
// presents a client certificate.
const verifyTimeout = 10 * time.Second

// ServerOptions configures the issuer's API.
type ServerOptions struct {
	// CA is the fleet CA: the only root of client certificates, and the
	// signer of the server's own certificate.
	CA *fleetca.CA
	// Registry holds the agents.
	Registry *Registry
	// Names are issuer_names, which the server certificate covers.
	Names []string
	// ClientTTL is the lifetime of client certificates;
	// fleetca.ClientLifetime when 0.
	ClientTTL time.Duration
	// Orderer obtains the certificates agents ask for (PathCertificate);
	// nil, and the issuer answers that it issues none.
	Orderer Orderer
	// Auditor keeps the audit trail of certificate requests and of the
	// client certificates the fleet CA issues agents (AuditEnrolled,
	// AuditClientRenewed); nil keeps none (the log still says
	// everything).
	Auditor Auditor
	// MaxOrders bounds the orders run at once; DefaultMaxOrders when 0.
	MaxOrders int
	// Setup identifies the settings orders depend on (a digest of the
	// [dns] section and the secrets it reads): a failure recorded under
	// another Setup is retried at the next request instead of at its
	// retry time, unless the CA asked to wait.
	Setup string
	// Logger receives enrolments and refusals; nil discards.
	Logger *slog.Logger
}

// Server is the issuer's HTTPS API: TLS 1.3 only, client certificates
// from the fleet CA only, and among those only the ones the agent's
// record lists (checked in the handshake and again at each request, so
// a revocation cuts open connections off too). Only PathEnroll and
// PathHealth answer without a client certificate.
type Server struct {
	opts ServerOptions
	log  *slog.Logger

	mu   sync.Mutex // guards cert
	cert *tls.Certificate

	work runner // certificate work in the background (issue.go)

	unhealthy atomic.Bool // the last health probe failed (healthz)
}

// NewServer checks opts and makes the server's certificate: a new key
// held in memory only, signed by the fleet CA.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.CA == nil || opts.Registry == nil || len(opts.Names) == 0 {
		return nil, errors.New("fleet: server: CA, registry and names are required")
	}
	if opts.ClientTTL == 0 {
		opts.ClientTTL = fleetca.ClientLifetime
	}
	if opts.MaxOrders <= 0 {
		opts.MaxOrders = DefaultMaxOrders
	}
	s := &Server{opts: opts, log: opts.Logger}
	s.work.running = make(map[string]bool)
	s.work.sem = make(chan struct{}, opts.MaxOrders)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if _, err := s.certificate(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// certificate returns the server certificate, making a new one when a
// third of its lifetime remains.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && time.Until(s.cert.Leaf.NotAfter) > fleetca.ServerLifetime/3 {
		return s.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fleet: server key: %w", err)
	}
	leaf, err := s.opts.CA.IssueServer(key.Public(), s.opts.Names)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	s.cert = &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	return s.cert, nil
}

// TLSConfig returns the server's TLS configuration.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		GetCertificate:   s.certificate,
		ClientAuth:       tls.VerifyClientCertIfGiven,
		ClientCAs:        s.opts.CA.Pool(),
		VerifyConnection: s.verifyConnection,
		NextProtos:       []string{"h2", "http/1.1"},
	}
}

// verifyConnection refuses in the handshake a client certificate that
// chains to the fleet CA but that the issuer no longer accepts (revoked
// agent, replaced or unknown certificate). A handshake without one goes
// on: only PathEnroll will answer it.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	if _, err := s.opts.Registry.Accept(ctx, cs.PeerCertificates[0]); err != nil {
		s.log.Warn("agent refused in the handshake", "host", cs.PeerCertificates[0].Subject.CommonName, "error", err)
		return err
	}
	return nil
}

// Serve answers the API on l until ctx ends, then shuts down, giving
// requests in flight five seconds. It calls Start first.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		case <-done:
		}
	}()
	err := hs.ServeTLS(l, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("fleet: serve: %w", err)
}
