package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/fleetca"
)

const issuerServeSummary = `Runs the fleet issuer: its HTTPS API on issuer_listen (TLS 1.3, client
certificates from the fleet CA only), with a server certificate for
issuer_names made from the fleet CA at start and kept in memory. It
enrols agents (tlspilot agent enroll) and obtains the certificates their
CSRs ask for, within their policy, from the CA with dns-01 ([dns]),
auditing every request and issuance (docs/fleet.md).`

// issuerServeCmd runs the issuer daemon until ctx ends.
func issuerServeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer", "--config FILE", issuerServeSummary, stdout, stderr)
	// Caught from now on, as serve and certs do: a SIGHUP or SIGUSR1
	// (logrotate) would otherwise end the daemon.
	sig := catchSignals()
	defer sig.stop()
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
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go lg.reopenOn(sctx, sig.usr1)
	go logHUP(sctx, sig.hup, lg.log, "the issuer")
	if err := serveIssuer(ctx, is, lg.log); err != nil {
		lg.log.Error("issuer stopped", "error", err)
		fmt.Fprintf(stderr, "tlspilot issuer: %v\n", err)
		return 1
	}
	return 0
}

// serveIssuer opens the fleet CA, the registry, the audit trail and the
// ACME engine, and serves the API.
func serveIssuer(ctx context.Context, is *issuerStore, log *slog.Logger) error {
	opts, err := is.fleetOptions()
	if err != nil {
		return err
	}
	ca, err := fleetca.Open(ctx, opts)
	if err != nil {
		return err
	}
	trail, err := openAuditTrail(ctx, is, true, log)
	if err != nil {
		return err
	}
	defer trail.Close()
	reg, err := fleet.New(fleet.Options{Storage: is.s, Logger: log, Auditor: trail})
	if err != nil {
		return err
	}
	if stale, err := reg.CheckPolicies(ctx); err == nil {
		for _, e := range stale {
			log.Warn("agent policy refused by this version", "error", e.Error())
		}
	}
	sopts := fleet.ServerOptions{CA: ca, Registry: reg, Names: is.cfg.IssuerNames, Auditor: trail,
		Logger: log.With("component", "issuer"), Setup: issuerSetup(is.cfg)}
	var m *tlspilot.Manager
	if is.cfg.DNS != nil {
		mcfg, err := managerConfig(is.cfg, log)
		if err != nil {
			return err
		}
		mcfg.Challenge = tlspilot.DNS01
		if m, err = tlspilot.New(ctx, mcfg); err != nil {
			return newError(is.cfg, err)
		}
		sopts.Orderer = m
	} else {
		log.Warn("no [dns] section: the issuer enrols agents but obtains no certificates for them (it validates with dns-01)")
	}
	srv, err := fleet.NewServer(sopts)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", is.cfg.IssuerListen)
	if err != nil {
		return is.cfg.Errorf("issuer_listen", "%w", err)
	}
	log.Info("issuer API listening", "addr", l.Addr().String(), "names", is.cfg.IssuerNames)
	g, ctx := errgroup.WithContext(ctx)
	if m != nil {
		g.Go(func() error { _ = m.Run(ctx); return nil }) // returns ctx's error once it ends
	}
	g.Go(func() error { return srv.Serve(ctx, l) })
	return g.Wait()
}

// openAuditTrail opens the issuer's audit trail: its database's table
// when its storage is PostgreSQL (created if create and the role may;
// upgraded if of an older version and the role owns it), else records
// in its storage. log, if not nil, receives the trail's warnings.
func openAuditTrail(ctx context.Context, is *issuerStore, create bool, log *slog.Logger) (fleet.AuditTrail, error) {
	o := fleet.AuditOptions{Storage: is.s, Create: create}
	if is.cfg.StorageIsDatabase() {
		o.DatabaseURL = is.cfg.Storage
	}
	if log != nil {
		o.Logger = log.With("component", "audit")
	}
	trail, err := fleet.OpenAuditor(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	return trail, nil
}

// issuerSetup is a digest of the settings the issuer's orders depend on:
// the CA and the [dns] section with the TSIG secret it names (the file's
// content, or the variable's value). A failure recorded under another
// digest is retried at the agent's next request (fleet.ServerOptions.Setup):
// the operator changed them to fix it. It never leaves the process.
func issuerSetup(cfg *config.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", cfg.CA)
	if d := cfg.DNS; d != nil {
		fmt.Fprintf(h, "%+v\n", *d)
		if d.TSIGSecretFile != "" {
			if b, err := os.ReadFile(d.TSIGSecretFile); err == nil {
				h.Write(b)
			}
		}
		if d.TSIGSecretEnv != "" {
			h.Write([]byte(os.Getenv(d.TSIGSecretEnv)))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
