package tlspilot

import (
	"net"
	"net/http"
	"time"

	"github.com/tlspilot/tlspilot/internal/solvers"
)

// httpSolver is the http-01 solver of orders: storage (for HTTPHandler),
// plus files in the certificate's challenge directory or a listener of
// its own, when the certificate has one.
func (m *Manager) httpSolver() solvers.Solver {
	x := &m.extras
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.httpSolver == nil {
		files := solvers.NewHTTP01Files(m.http01, x.dir)
		x.httpSolver = solvers.NewStandalone(files, x.addr, m.serveHTTP01)
	}
	return x.httpSolver
}

// alpnSolver is the tls-alpn-01 solver of orders: storage (for
// TLSConfig), plus a listener of its own for certificates that have one.
func (m *Manager) alpnSolver() solvers.Solver {
	x := &m.extras
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.alpnSolver == nil {
		x.alpnSolver = solvers.NewStandalone(m.alpn, x.addr, m.serveTLSALPN01)
	}
	return x.alpnSolver
}

// addr returns the standalone address of certificate id, "" if none.
func (x *extras) addr(id string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.addrs[id]
}

// serveHTTP01 answers http-01 on l until stop is called.
func (m *Manager) serveHTTP01(l net.Listener) (stop func()) {
	s := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(l) }()
	return func() { _ = s.Close(); _ = l.Close() }
}

// serveTLSALPN01 answers tls-alpn-01 on l until stop is called.
func (m *Manager) serveTLSALPN01(l net.Listener) (stop func()) {
	s := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: m.ChallengeTLSConfig()}
	go func() { _ = s.ServeTLS(l, "", "") }()
	return func() { _ = s.Close(); _ = l.Close() }
}
