package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/devca"
)

// startManager creates a tlspilot Manager for ca, serves its http-01
// answers and its certificates on the ports where ca validates, manages
// o.names and runs the Manager. The returned function stops it all.
func startManager(ctx context.Context, ca *devca.CA, o options, dir string) (*tlspilot.Manager, func(), error) {
	logger := newLogger()
	m, err := tlspilot.New(ctx, tlspilot.Config{
		CA:         ca.DirectoryURL,
		CARoots:    ca.Roots,
		AgreeTerms: true,
		Email:      "ops@example.test",
		StorageDir: dir,
		KeyTypes:   []tlspilot.KeyType{o.keyType},
		Challenge:  tlspilot.HTTP01,
		// A failed attempt is retried within seconds, not the default
		// minute, so that it fits in obtainTimeout.
		RetryMin: time.Second,
		RetryMax: 10 * time.Second,
		Logger:   logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("new manager: %w", err)
	}
	stopServing, err := serve(m, ca, logger)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Manage(ctx, o.names...); err != nil {
		stopServing()
		return nil, nil, fmt.Errorf("manage %v: %w", o.names, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(runCtx) // returns runCtx's error once stopped
	}()
	return m, func() {
		cancel()
		<-done
		stopServing()
	}, nil
}

// serve serves m's http-01 answers on 127.0.0.1:ca.HTTPPort and HTTPS with
// m's certificates on 127.0.0.1:ca.TLSPort, where ca's validation
// authority connects. Their errors go to logger. The returned function
// stops both servers.
func serve(m *tlspilot.Manager, ca *devca.CA, logger *slog.Logger) (func(), error) {
	httpLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ca.HTTPPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for http-01: %w", err)
	}
	tlsLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ca.TLSPort)))
	if err != nil {
		httpLn.Close()
		return nil, fmt.Errorf("listen for https: %w", err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from tlspilot\n")
	})
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	httpSrv := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	tlsSrv := &http.Server{Handler: hello, TLSConfig: m.TLSConfig(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	go func() { _ = httpSrv.Serve(httpLn) }()          // returns ErrServerClosed at stop
	go func() { _ = tlsSrv.ServeTLS(tlsLn, "", "") }() // idem
	return func() {
		shutdown(httpSrv)
		shutdown(tlsSrv)
	}, nil
}

// shutdown stops srv, letting connections in progress (such as a TLS
// handshake the client has just finished) end for up to a second.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		_ = srv.Close()
	}
}

// waitServing waits until every certificate of m is CA-issued, or timeout.
func waitServing(ctx context.Context, m *tlspilot.Manager, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st := m.Status()
		if serving(st) {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("no certificate after %v%s", timeout, lastErrors(st))
			}
			return fmt.Errorf("waiting for a certificate: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// serving reports whether every certificate in st is CA-issued.
func serving(st []tlspilot.CertStatus) bool {
	for _, s := range st {
		if !s.Serving {
			return false
		}
	}
	return len(st) > 0
}

// lastErrors describes the last failures in st, if any.
func lastErrors(st []tlspilot.CertStatus) string {
	var msgs []string
	for _, s := range st {
		if s.LastError != "" {
			msgs = append(msgs, fmt.Sprintf("%v: %d failed attempts, last: %s", s.Names, s.Attempts, s.LastError))
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}
