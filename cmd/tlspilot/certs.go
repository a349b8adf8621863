package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/deploy"
)

const certsSummary = `Keeps the [[certificate]] tables of the config file for other software
(nginx, Postfix, HAProxy…): obtains and renews them when due, writes their
PEM files (atomically, only when they change) and runs their reload.
Same storage, account, locks, status and notifications as serve.

As a daemon (default) it renews on schedule, deploys each new certificate
at once, takes up certificates stored by "tlspilot renew" within 15 s,
retries a failed deploy or reload with backoff (10 s up to 1 h), and
answers health, status and metrics on certs_admin_listen (by default
admin_listen when the file has no [[site]], else off).

With --once (cron, systemd timer) it renews what is due (no request to the
CA when nothing is), deploys, retries a deploy or reload that failed
before, prints the status and exits with the status codes: 0 OK; 1 WARNING
(a certificate expiring or failing to renew, or a deploy failing while the
previously deployed certificate is still valid); 2 CRITICAL (expired, no
certificate for over an hour, or a deploy failing with no valid
certificate deployed); 3 UNKNOWN (config or storage unreadable).`

func certsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("certs", "[--config FILE] [--once]", certsSummary, stdout, stderr)
	once := cf.Bool("once", false, "renew what is due, deploy, print the status and exit")
	if code, ok := cf.parse(args, stdout); !ok {
		return map[bool]int{true: code, false: tlspilot.ExitUnknown}[code == 0]
	}
	if cf.NArg() > 0 {
		fmt.Fprintf(stderr, "tlspilot certs: unexpected argument %q\n", cf.Arg(0))
		return tlspilot.ExitUnknown
	}
	var sig *signals
	if !*once {
		// Caught from now on, as serve does: while the daemon starts, a
		// SIGHUP or SIGUSR1 would end it.
		sig = catchSignals()
		defer sig.stop()
	}
	cfg, err := cf.load()
	if err == nil {
		err = asStorageOwner(cfg, "certs")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tlspilot.ExitUnknown
	}
	lg, err := openLogs(cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tlspilot.ExitUnknown
	}
	defer lg.close()
	k, err := startKeeper(ctx, cfg, lg.log, !*once)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return tlspilot.ExitUnknown
	}
	defer k.stop()
	if *once {
		return k.once(ctx, stdout)
	}
	return k.daemon(ctx, lg, sig)
}

// keeper is a running `tlspilot certs`: the Manager of the config's
// [[certificate]] tables with their deployers, the notify hooks, and the
// daemon's admin listener.
type keeper struct {
	cfg  *config.Config
	log  *slog.Logger
	m    *tlspilot.Manager
	ntf  *hooks
	adm  *adminListener
	stop func()
}

// startKeeper builds the Manager of cfg's certificates; a daemon also
// opens the admin listener of certs_admin_listen.
func startKeeper(ctx context.Context, cfg *config.Config, log *slog.Logger, daemon bool) (*keeper, error) {
	if len(cfg.Certificates) == 0 {
		return nil, cfg.Errorf("certificate", "no [[certificate]] table: nothing for certs to keep")
	}
	if err := preflight(cfg); err != nil {
		return nil, err
	}
	certs, err := deployedCerts(cfg, log)
	if err != nil {
		return nil, err
	}
	ntf, err := startHooks(cfg, log)
	if err != nil {
		return nil, err
	}
	mcfg, err := managerConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	ntf.configure(&mcfg)
	adm := &adminListener{}
	if daemon {
		if adm, err = bindAdminAt(cfg, "certs_admin_listen", cfg.CertsAdminListen); err != nil {
			ntf.close(log)
			return nil, err
		}
		adm.configure(&mcfg)
	}
	m, err := tlspilot.New(ctx, mcfg)
	if err != nil {
		adm.close()
		ntf.close(log)
		return nil, newError(cfg, err)
	}
	if err := m.ManageCerts(ctx, certs...); err != nil {
		adm.close()
		ntf.close(log)
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	stop := func() {}
	if needsListeners(cfg) {
		stop = answerChallenges(m, cfg, log)
	}
	k := &keeper{cfg: cfg, log: log, m: m, ntf: ntf, adm: adm}
	k.stop = func() { stop(); adm.close(); ntf.close(log) }
	return k, nil
}

// once renews what is due, deploys, prints the managed certificates'
// status and returns its exit code.
func (k *keeper) once(ctx context.Context, stdout io.Writer) int {
	if err := k.m.Renew(ctx, tlspilot.RenewOptions{NoStartCheck: true}); err != nil {
		k.log.Debug("renewal failed", "error", err) // each failure is logged by the Manager
	}
	if err := k.m.Deploy(ctx); err != nil {
		k.log.Debug("deploy failed", "error", err) // each failure is logged by the Manager
	}
	r := k.m.Report(ctx)
	var managed []tlspilot.CertStatus
	for _, c := range r.Certificates {
		if c.Managed {
			managed = append(managed, c)
		}
	}
	r = tlspilot.NewStatusReport(r.Time, managed, r.Account)
	printTable(stdout, r)
	return r.ExitCode
}

// daemon renews and deploys until ctx ends. SIGHUP does not reload the
// config (a restart does): it is logged instead of ending the process.
// SIGUSR1 reopens the log files.
func (k *keeper) daemon(ctx context.Context, lg *logs, sig *signals) int {
	k.log.Info("keeping certificates", "config", k.cfg.File, "certificates", len(k.cfg.Certificates),
		"admin", k.adm.addr())
	go k.adm.serve(ctx, k.m, k.log)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go lg.reopenOn(sctx, sig.usr1)
	go logHUP(sctx, sig.hup, k.log, "certs")
	if err := k.m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		k.log.Error("certs stopped", "error", err)
		return 1
	}
	k.log.Info("stopped", "reason", context.Cause(ctx).Error())
	return 0
}

// needsListeners reports whether a certificate answers http-01 or
// tls-alpn-01 neither by files nor on its own listener: those are
// answered on http_listen and https_listen, as `renew` does.
func needsListeners(cfg *config.Config) bool {
	for _, c := range cfg.Certificates {
		if c.Challenge != tlspilot.DNS01 && c.ChallengeDir == "" && c.Standalone == "" {
			return true
		}
	}
	return false
}

// configuredCerts lists every certificate the config names, the sites'
// and the [[certificate]] tables': for status, renew, revoke and clean,
// which operate on the storage that serve and certs share.
func configuredCerts(cfg *config.Config) []tlspilot.Cert {
	return append(acmeCerts(cfg), certificateCerts(cfg)...)
}

// certificateCerts maps the [[certificate]] tables onto the library's
// Cert, without deployers: for the commands that operate on the storage
// (status, renew, revoke).
func certificateCerts(cfg *config.Config) []tlspilot.Cert {
	out := make([]tlspilot.Cert, 0, len(cfg.Certificates))
	for _, c := range cfg.Certificates {
		tc := tlspilot.Cert{Names: c.Names, Challenge: c.Challenge, ChallengeDir: c.ChallengeDir, Standalone: c.Standalone}
		for _, kt := range c.KeyTypes {
			tc.KeyTypes = append(tc.KeyTypes, tlspilot.KeyType(kt))
		}
		out = append(out, tc)
	}
	return out
}

// deployedCerts maps the [[certificate]] tables onto the library's Cert,
// one per key type, each with the deployer of its files.
func deployedCerts(cfg *config.Config, log *slog.Logger) ([]tlspilot.Cert, error) {
	out := certificateCerts(cfg)
	for i, c := range cfg.Certificates {
		out[i].Deployers = make(map[tlspilot.KeyType]tlspilot.Deployer, len(c.KeyTypes))
		for _, kt := range c.KeyTypes {
			o := deployOptions(c, kt, log)
			o.HideEnv = secretEnv(cfg)
			d, err := deploy.New(o)
			if err != nil {
				return nil, cfg.Errorf(fmt.Sprintf("certificate[%d]", i+1), "%v", err)
			}
			out[i].Deployers[tlspilot.KeyType(kt)] = d
		}
	}
	return out, nil
}

// secretEnv names the environment variables cfg reads secrets from
// (tsig_secret_env, and PGPASSWORD, the password of a database storage,
// which pgx reads as libpq does), which programs tlspilot runs (reload,
// notify_command) do not inherit: a `psql -c "SELECT pg_reload_conf()"`
// reload would otherwise even log in with the storage's password.
func secretEnv(cfg *config.Config) []string {
	var out []string
	if cfg.DNS != nil && cfg.DNS.TSIGSecretEnv != "" {
		out = append(out, cfg.DNS.TSIGSecretEnv)
	}
	if config.IsDatabaseURL(cfg.Storage) {
		out = append(out, "PGPASSWORD")
	}
	return out
}

// deployOptions are the deploy options of c's files for key type kt.
func deployOptions(c config.Certificate, kt string, log *slog.Logger) deploy.Options {
	n := len(c.KeyTypes)
	path := func(p string) string {
		if p == "" {
			return ""
		}
		return config.DeployPath(p, kt, n)
	}
	o := deploy.Options{
		Fullchain: path(c.Fullchain), Privkey: path(c.Privkey), Cert: path(c.Cert), Chain: path(c.Chain),
		Combined: path(c.Combined), Owner: c.Owner, Group: c.Group, Mode: c.Mode, Reload: c.Reload,
		PIDFile: c.PIDFile, Logger: log.With("component", "deploy"),
	}
	if c.ReloadSignal != "" {
		o.Signal, _ = deploy.ParseSignal(c.ReloadSignal) // config checked the name
	}
	return o
}

// printDeploy prints the deploy state of a certificate under its status.
func printDeploy(w io.Writer, d *tlspilot.DeployStatus) {
	fmt.Fprintf(w, "  deploy %s: serial %s, deployed %s\n", d.State, orDash(d.Serial), stamp(d.DeployedAt))
	if d.State == tlspilot.DeployFailing {
		fmt.Fprintf(w, "  deploy error (%s, attempt %d, next try %s): %s\n", stamp(d.LastAttempt), d.Attempts, stamp(d.RetryAt), d.LastError)
	}
}

// deployFailing counts the certificates whose deploy is failing.
func deployFailing(r tlspilot.StatusReport) int {
	n := 0
	for _, c := range r.Certificates {
		if c.Deploy != nil && c.Deploy.State == tlspilot.DeployFailing {
			n++
		}
	}
	return n
}

// deploy.Files is the Deployer of every [[certificate]], and checks
// without writing (so --once takes no deploy lock when nothing changed);
// internal/deploy does not import the library, so the guards are here.
var (
	_ tlspilot.Deployer      = (*deploy.Files)(nil)
	_ tlspilot.DeployChecker = (*deploy.Files)(nil)
)

// logHUP logs each SIGHUP received on hup until ctx ends.
func logHUP(ctx context.Context, hup <-chan os.Signal, log *slog.Logger, what string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Warn("SIGHUP ignored: " + what + " reads its config at start only; restart it to apply changes")
		}
	}
}
