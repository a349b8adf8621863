package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/oneline"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

const agentRunSummary = `Keeps the [[certificate]] tables of an agent's config: makes each
certificate's key on this host (a new one per renewal; reuse_key = true
keeps it), sends the CSR to the issuer when the certificate is due (the
issuer's renewal window, else the last third of its lifetime), writes the
PEM files and runs the reload as tlspilot certs does, and renews the
agent's own client certificate. With the issuer unreachable it keeps the
last good certificate deployed and retries with backoff (1 min up to 1 h).

With --once (cron, systemd timer) it does what is due (also what waits
only for the backoff of an earlier failure), waits up to --wait for
certificates the issuer is still obtaining, deploys, prints the status and
exits 0 when every certificate is valid and deployed, else 1 (or 2 when
one is expired or missing for over an hour), with the problem of each.

Enrol the agent first: tlspilot agent enroll --config AGENT.toml
--token-file FILE. tlspilot status --config AGENT.toml reports the
agent's certificates from its storage, without the issuer.`

// defaultOnceWait bounds how long --once waits for the issuer to finish
// certificates it answered "processing" for.
const defaultOnceWait = 10 * time.Minute

// agentRunCmd runs the agent: a daemon, or one pass with --once.
func agentRunCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("agent", "--config AGENT.toml [--once [--wait DURATION]]", agentRunSummary, stdout, stderr)
	once := cf.Bool("once", false, "do what is due, deploy, print the status and exit")
	wait := cf.Duration("wait", defaultOnceWait, "with --once, how long to wait for certificates the issuer is still obtaining")
	debug := cf.Bool("debug", false, "log at debug level")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	switch {
	case cf.NArg() > 0:
		fmt.Fprintf(stderr, "tlspilot agent: unexpected argument %q\n", cf.Arg(0))
		return 2
	case *cf.config == "":
		fmt.Fprintln(stderr, "tlspilot agent: --config AGENT.toml is required")
		return 2
	}
	var sig *signals
	if !*once {
		// Caught from now on: while the daemon starts, a SIGHUP or
		// SIGUSR1 would end it.
		sig = catchSignals()
		defer sig.stop()
	}
	lvl := slog.LevelInfo
	if *debug {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg, k, err := startAgent(ctx, *cf.config, log)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot agent: %v\n", err)
		return tlspilot.ExitUnknown
	}
	if *once {
		return agentOnce(ctx, cfg, k, *wait, stdout, stderr)
	}
	return agentDaemon(ctx, k, log, sig)
}

// agentKeeps refuses an agent config with nothing to keep, as `agent`
// and `check` do (`agent enroll` needs no [[certificate]]).
func agentKeeps(cfg *config.Agent) error {
	if len(cfg.Certificates) == 0 {
		return cfg.Errorf("certificate", "no [[certificate]] table: nothing for the agent to keep (enrolment needs none; the agent itself does)")
	}
	return nil
}

// startAgent reads the agent's config and makes its Keeper.
func startAgent(ctx context.Context, path string, log *slog.Logger) (*config.Agent, *fleet.Keeper, error) {
	cfg, err := config.LoadAgent(path)
	if err != nil {
		return nil, nil, err
	}
	if err := agentKeeps(cfg); err != nil {
		return nil, nil, err
	}
	for _, w := range cfg.ReloadWarnings() {
		log.Warn("reload: " + w)
	}
	roots, err := fleetRoots(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, sealer, err := openAgentStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	certs, err := keptCerts(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	k, err := fleet.NewKeeper(ctx, fleet.KeeperOptions{Storage: st, Sealer: sealer, Issuer: cfg.Issuer, Roots: roots,
		Certificates: certs, Logger: log.With("component", "agent")})
	if err != nil {
		return nil, nil, err
	}
	return cfg, k, nil
}

// keptCerts maps the agent's [[certificate]] tables onto the Keeper's,
// each with the deployer `tlspilot certs` would make of it; without log
// (status, which deploys nothing), without deployers.
func keptCerts(cfg *config.Agent, log *slog.Logger) ([]fleet.KeptCert, error) {
	out := make([]fleet.KeptCert, 0, len(cfg.Certificates))
	for i, c := range cfg.Certificates {
		kt, err := keys.ParseType(c.KeyTypes[0])
		if err != nil {
			return nil, cfg.Errorf(fmt.Sprintf("certificate[%d]", i+1), "%w", err)
		}
		kc := fleet.KeptCert{Names: c.Names, KeyType: kt, ReuseKey: c.ReuseKey}
		if log != nil {
			o := deployOptions(c.Certificate, c.KeyTypes[0], log)
			d, err := deploy.New(o)
			if err != nil {
				return nil, cfg.Errorf(fmt.Sprintf("certificate[%d]", i+1), "%v", err)
			}
			kc.Deployer, kc.DeployConfig = d, deployFingerprint(o)
		}
		out = append(out, kc)
	}
	return out, nil
}

// deployFingerprint identifies what o deploys and how (files, owner,
// mode, reload), for fleet.KeptCert.DeployConfig: a hash of them.
func deployFingerprint(o deploy.Options) string {
	o.Logger = nil
	b, err := json.Marshal(o)
	if err != nil {
		return "" // a plain struct: cannot happen
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// agentDaemon runs the Keeper until ctx ends; SIGHUP and SIGUSR1 are
// logged, not acted on (a restart reads the config again; the agent logs
// to standard error only, which has no file to reopen).
func agentDaemon(ctx context.Context, k *fleet.Keeper, log *slog.Logger, sig *signals) int {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go logHUP(sctx, sig.hup, log, "the agent")
	go func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-sig.usr1:
				log.Info("SIGUSR1 ignored: the agent logs to standard error, which has no file to reopen")
			}
		}
	}()
	if err := k.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("agent stopped", "error", err)
		return 1
	}
	log.Info("stopped", "reason", context.Cause(ctx).Error())
	return 0
}

// agentOnce does one pass, prints the status and each problem, and
// returns 0 when every certificate is valid and deployed.
func agentOnce(ctx context.Context, cfg *config.Agent, k *fleet.Keeper, wait time.Duration, stdout, stderr io.Writer) int {
	results := k.Once(ctx, wait)
	r := readAgentStatus(ctx, cfg)
	code := r.ExitCode
	for _, res := range results {
		if !res.OK {
			code = max(code, tlspilot.ExitWarning)
		}
	}
	if code != r.ExitCode {
		// A problem the stored status does not grade (a deploy not done
		// yet): the first line, which Nagios reads, says it too.
		r.ExitCode, r.Status = code, exitStatus(code)
	}
	printTable(stdout, r)
	for _, res := range results {
		if !res.OK {
			fmt.Fprintf(stderr, "tlspilot agent: %s: %s\n", oneline.Escape(strings.Join(res.Names, ",")), oneline.Escape(res.Problem))
		}
	}
	return code
}

// exitStatus names an exit code of a status report, as its Status.
func exitStatus(code int) string {
	switch code {
	case tlspilot.ExitOK:
		return "OK"
	case tlspilot.ExitWarning:
		return "WARNING"
	case tlspilot.ExitCritical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// readAgentStatus is the status of an agent's certificates, read from
// its storage without talking to the issuer.
// It only reads: a storage that does not exist is neither created nor
// an error (every certificate is pending, and the report's Note says
// why), as for serve's status.
func readAgentStatus(ctx context.Context, cfg *config.Agent) tlspilot.StatusReport {
	now := time.Now()
	var st storage.Storage
	note := ""
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.Storage, ReadOnly: true})
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		st = noAgentStorage{}
		note = fmt.Sprintf("the storage %s does not exist: this agent has not been enrolled with this config yet (tlspilot agent enroll creates it), or the agent uses another storage", cfg.Storage)
		if _, err := os.Stat(cfg.Storage); err == nil {
			note = fmt.Sprintf("the storage %s holds nothing yet: this agent has not been enrolled with this config (tlspilot agent enroll)", cfg.Storage)
		}
	case err != nil:
		return tlspilot.UnknownReport(now, cfg.Errorf("storage", "%w", err))
	default:
		st = fs
	}
	certs, err := keptCerts(cfg, nil)
	if err != nil {
		return tlspilot.UnknownReport(now, err)
	}
	cs, err := fleet.AgentStatus(ctx, st, cfg.Issuer, certs, now, cfg.WarnWindow)
	if err != nil {
		return tlspilot.UnknownReport(now, err)
	}
	r := tlspilot.NewStatusReport(now, cs, nil)
	r.Note = note
	return r
}

// noAgentStorage is an agent's storage that was never created: it holds
// nothing, and status writes nothing.
type noAgentStorage struct{}

func (noAgentStorage) Load(context.Context, string) ([]byte, error) { return nil, iofs.ErrNotExist }
func (noAgentStorage) List(context.Context, string) ([]string, error) {
	return nil, nil
}
func (noAgentStorage) Store(context.Context, string, []byte) error { return fsstore.ErrReadOnly }
func (noAgentStorage) Delete(context.Context, string) error        { return fsstore.ErrReadOnly }
func (noAgentStorage) Lock(context.Context, string) (storage.Lease, error) {
	return nil, fsstore.ErrReadOnly
}

var _ storage.Storage = noAgentStorage{}

// agentStatusCmd is `tlspilot status` on an agent's config (one with a
// top-level issuer key); ok is false for any other config.
func agentStatusCmd(ctx context.Context, path string, names []string, asJSON bool, stdout, stderr io.Writer) (code int, ok bool) {
	if path == "" || !config.IsAgentFile(path) {
		return 0, false
	}
	cfg, err := config.LoadAgent(path)
	if err != nil {
		return report(stdout, stderr, asJSON, tlspilot.UnknownReport(time.Now(), err)), true
	}
	r := selectNames(readAgentStatus(ctx, cfg), names)
	code = report(stdout, stderr, asJSON, r)
	if !asJSON && r.Note != "" {
		fmt.Fprintln(stdout, "\nnote: "+r.Note)
	}
	return code, true
}
