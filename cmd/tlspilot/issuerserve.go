package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/fleetca"
)

const issuerServeSummary = `Runs the fleet issuer: its HTTPS API on issuer_listen (TLS 1.3, client
certificates from the fleet CA only), with a server certificate for
issuer_names made from the fleet CA at start and kept in memory. Today it
enrols agents (tlspilot agent enroll); issuing their certificates is to
come (docs/fleet.md).`

// issuerServeCmd runs the issuer daemon until ctx ends.
func issuerServeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer", "--config FILE", issuerServeSummary, stdout, stderr)
	is, code, ok := issuerArgs(cf, args, nil, stdout)
	if !ok {
		return code
	}
	defer is.close()
	lg, err := openLogs(is.cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer lg.close()
	if err := serveIssuer(ctx, is, lg.log); err != nil {
		lg.log.Error("issuer stopped", "error", err)
		fmt.Fprintf(stderr, "tlspilot issuer: %v\n", err)
		return 1
	}
	return 0
}

// serveIssuer opens the fleet CA and the registry and serves the API.
func serveIssuer(ctx context.Context, is *issuerStore, log *slog.Logger) error {
	opts, err := is.fleetOptions()
	if err != nil {
		return err
	}
	ca, err := fleetca.Open(ctx, opts)
	if err != nil {
		return err
	}
	reg, err := fleet.New(fleet.Options{Storage: is.s, Logger: log})
	if err != nil {
		return err
	}
	srv, err := fleet.NewServer(fleet.ServerOptions{CA: ca, Registry: reg, Names: is.cfg.IssuerNames, Logger: log.With("component", "issuer")})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", is.cfg.IssuerListen)
	if err != nil {
		return is.cfg.Errorf("issuer_listen", "%w", err)
	}
	log.Info("issuer API listening", "addr", l.Addr().String(), "names", is.cfg.IssuerNames)
	return srv.Serve(ctx, l)
}
