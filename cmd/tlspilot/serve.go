package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
)

// daemon is a running `tlspilot serve`.
type daemon struct {
	cfg  *config.Config
	log  *slog.Logger
	acme *acmeSide
	srv  *server.Server
	adm  *adminListener
	ntf  *hooks
	auth *clientAuths

	// started is the config serve started with, which the settings that
	// change only on restart still follow; cfg is the last one applied.
	started *config.Config
	logs    *logs
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	path, code, ok := flags("serve", "Serves the sites of the config file over HTTPS with certificates obtained through ACME.\nSIGHUP reloads the config; SIGTERM drains connections and exits.", args, stdout, stderr)
	if !ok {
		return code
	}
	// Caught from now on: while serve starts (the config read, the
	// storage opened), a SIGHUP or SIGUSR1 would end it. They are acted
	// on once it serves: a reload (of a file that may have changed since
	// it was read), the log files reopened.
	sig := catchSignals()
	defer sig.stop()
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	d, err := start(ctx, cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := d.run(ctx, path, sig); err != nil {
		d.log.Error("serve stopped", "error", err)
		return 1
	}
	d.log.Info("stopped", "reason", context.Cause(ctx).Error())
	return 0
}

// start binds the ports, drops privileges, opens the storage and builds
// the Manager when a site needs ACME (acmeSide), and builds the server.
// Nothing is served yet.
func start(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) (*daemon, error) {
	lg, err := openLogs(cfg, stdout, stderr)
	if err != nil {
		return nil, err
	}
	logger := lg.log
	httpL, httpsL, err := bind(cfg)
	if err != nil {
		return nil, err
	}
	adm, err := bindAdmin(cfg)
	if err != nil {
		_ = httpL.Close()
		_ = httpsL.Close()
		return nil, err
	}
	closeAll := func() { _ = httpL.Close(); _ = httpsL.Close(); adm.close() }
	ntf, err := startHooks(cfg, logger) // before dropping privileges: reads the webhook secret
	if err != nil {
		closeAll()
		return nil, err
	}
	if err := dropPrivileges(cfg.User, cfg.Group); err != nil {
		closeAll()
		return nil, cfg.Errorf("user", "%v", err)
	}
	if err := checkChallengeDir(cfg); err != nil {
		closeAll()
		return nil, err
	}
	if err := checkLogDirs(cfg); err != nil {
		logger.Warn("log files cannot be reopened after rotation", "error", err)
	}
	if err := checkOwnPrograms(cfg); err != nil {
		logger.Error("a program serve runs cannot be run: every notification by command, or every dns-01 order, will fail", "error", err)
	}
	acme, err := startACME(ctx, cfg, logger, adm, ntf)
	if err != nil {
		closeAll()
		return nil, err
	}
	side := newSideStorage(cfg, logger)
	auth := newClientAuths(logger, side)
	sites, settle, err := auth.sites(cfg, acme.GetCertificate)
	if err != nil {
		closeAll()
		return nil, err
	}
	staple, err := newStapler(ctx, cfg, acme, side, logger)
	if err != nil {
		settle(false)
		closeAll()
		return nil, err
	}
	srv, err := server.New(server.Options{
		Stapler:            staple,
		HTTPListener:       httpL,
		HTTPSListener:      httpsL,
		Sites:              sites,
		ACMEHTTP:           acme.HTTPHandler,
		ChallengeDir:       cfg.ChallengeDir,
		ACMEGetCertificate: acme.GetCertificate,
		Logger:             logger,
		AccessLog:          lg.access,
		MaxConnections:     cfg.MaxConnections,
	})
	settle(err == nil)
	if err != nil {
		closeAll()
		return nil, inFile(cfg, siteError(cfg, err))
	}
	adm.watchServer(srv)
	adm.watchStapling(staple)
	logger.Info("serving", "config", cfg.File, "sites", len(cfg.Sites), "http", httpL.Addr().String(), "https", httpsL.Addr().String(), "admin", adm.addr())
	return &daemon{cfg: cfg, started: cfg, logs: lg, log: logger, acme: acme, srv: srv, adm: adm, ntf: ntf, auth: auth}, nil
}

// startACME builds serve's ACME side and has it manage the certificates
// of the sites without cert_file; with none, it uses no account.
func startACME(ctx context.Context, cfg *config.Config, logger *slog.Logger, adm *adminListener, ntf *hooks) (*acmeSide, error) {
	acme := &acmeSide{log: logger, adm: adm, ntf: ntf}
	if _, err := acme.ensure(ctx, cfg); err != nil {
		return nil, err
	}
	m := acme.manager()
	if m == nil {
		logger.Info("no site obtains a certificate from the CA: no ACME account is used, and the storage is opened only if a site needs it for OCSP or client-certificate revocation answers", "sites", len(cfg.Sites))
		return acme, nil
	}
	if err := m.ManageCerts(ctx, acmeCerts(cfg)...); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return acme, nil
}

// signals are serve's SIGHUP and SIGUSR1, caught until stop.
type signals struct {
	hup, usr1 chan os.Signal
}

// catchSignals starts catching SIGHUP and SIGUSR1, one of each kept
// until it is taken.
func catchSignals() *signals {
	s := &signals{hup: make(chan os.Signal, 1), usr1: make(chan os.Signal, 1)}
	signal.Notify(s.hup, syscall.SIGHUP)
	signal.Notify(s.usr1, syscall.SIGUSR1)
	return s
}

func (s *signals) stop() {
	signal.Stop(s.hup)
	signal.Stop(s.usr1)
}

// run serves until ctx ends, reloading the config on SIGHUP and
// reopening the log files on SIGUSR1.
func (d *daemon) run(ctx context.Context, path string, sig *signals) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.acme.run(ctx)
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		d.adm.serve(ctx, d.acme, d.log)
	}()
	go d.logs.reopenOn(ctx, sig.usr1)
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig.hup:
				d.reload(ctx, path)
			}
		}
	}()
	err := d.srv.Serve(ctx)
	cancel()
	<-reloadDone // a reload may start the Manager: wait for it before waiting for the Manager
	d.auth.close()
	d.acme.wait()
	<-adminDone
	d.ntf.close(d.log)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// bind opens the HTTP and HTTPS listeners, reporting failures at the
// config line of the address.
func bind(cfg *config.Config) (net.Listener, net.Listener, error) {
	httpL, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return nil, nil, cfg.Errorf("http_listen", "cannot listen on %s: %v", cfg.HTTPListen, unwrapOp(err))
	}
	httpsL, err := net.Listen("tcp", cfg.HTTPSListen)
	if err != nil {
		_ = httpL.Close()
		return nil, nil, cfg.Errorf("https_listen", "cannot listen on %s: %v", cfg.HTTPSListen, unwrapOp(err))
	}
	return httpL, httpsL, nil
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// managerConfig maps the config file onto the library's Config.
func managerConfig(cfg *config.Config, logger *slog.Logger) (tlspilot.Config, error) {
	mc := tlspilot.Config{
		CA:         cfg.CA,
		Email:      cfg.Email,
		AgreeTerms: cfg.AgreeTerms,
		StorageDir: cfg.Storage,
		Challenge:  cfg.Challenge,
		Profile:    cfg.Profile,
		Logger:     logger,
		UserAgent:  userAgent(),

		KeepDeactivatedAccount: cfg.KeepDeactivatedAccount,
		WarnWindow:             cfg.WarnWindow,
	}
	for _, kt := range cfg.KeyTypes {
		mc.KeyTypes = append(mc.KeyTypes, tlspilot.KeyType(kt))
	}
	if len(cfg.CARoots) > 0 {
		pool := x509.NewCertPool()
		for _, f := range cfg.CARoots {
			b, err := os.ReadFile(f)
			if err != nil || !pool.AppendCertsFromPEM(b) {
				return mc, cfg.Errorf("ca_root", "cannot read certificates from %s", f)
			}
		}
		mc.CARoots = pool
	}
	if cfg.EABKeyID != "" {
		b, err := os.ReadFile(cfg.EABHMACFile)
		if err != nil {
			return mc, cfg.Errorf("eab_hmac_file", "%v", err)
		}
		key, err := config.EABKey(b)
		if err != nil {
			return mc, cfg.Errorf("eab_hmac_file", "%s %v", cfg.EABHMACFile, err)
		}
		mc.EAB = &tlspilot.EAB{KeyID: cfg.EABKeyID, HMACKey: key}
	}
	if cfg.DNS != nil {
		dc := dnsConfig(cfg.DNS)
		p, err := provider.New(dc, logger.With("component", "dns-01"))
		if err != nil {
			return mc, cfg.Errorf("dns.provider", "%v", err)
		}
		mc.DNSProvider, mc.DNSPropagation = p, dc.Propagation()
	} else if mc.Challenge == tlspilot.DNS01 {
		return mc, cfg.Errorf("challenge", "dns-01 needs a [dns] section")
	}
	if err := storageConfig(cfg, &mc, logger); err != nil {
		return mc, err
	}
	return mc, nil
}

// dnsConfig maps the [dns] section onto the dns-01 package's Config.
func dnsConfig(d *config.DNS) dns01.Config {
	return dns01.Config{
		Provider:           d.Provider,
		Server:             d.Server,
		TSIGKey:            d.TSIGKey,
		TSIGAlgorithm:      d.TSIGAlgorithm,
		TSIGSecretFile:     d.TSIGSecretFile,
		TSIGSecretEnv:      d.TSIGSecretEnv,
		Zone:               d.Zone,
		Command:            d.Command,
		Timeout:            d.Timeout,
		Resolvers:          d.Resolvers,
		AuthoritativePort:  d.AuthoritativePort,
		PropagationTimeout: d.PropagationTimeout,
	}
}
