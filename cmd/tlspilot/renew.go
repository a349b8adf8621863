package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/oneline"
)

const renewSummary = `Renews now the certificates that are due, or with --force the named ones
(every one without a NAME), taking the same locks as a running daemon on
the same storage; the daemon serves the new certificates within 15 s.
Challenges are answered by the running daemon (through the storage), or,
when its ports are free, by this command on http_listen and https_listen.
Exits 0 when every renewal succeeded, 1 otherwise, also when a certificate
is not renewed because it waits to retry after a failed attempt.`

func renewCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("renew", "[--config FILE] [--force] [NAME...]", renewSummary, stdout, stderr)
	force := cf.Bool("force", false, "renew the selected certificates even if they are not due")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	m, stop, err := cf.manager(ctx, stderr)
	if err != nil {
		printError(stderr, "", err)
		return 1
	}
	defer stop()
	p := newProgress(stdout, m.DNSWaiting)
	err = m.Renew(ctx, tlspilot.RenewOptions{Names: cf.Args(), Force: *force, Progress: p.step})
	p.wait()
	failed, waiting, all := p.failures()
	switch {
	case failed > 0 || waiting > 0:
		// Each one was shown on its certificate's line.
		fmt.Fprintf(stderr, "tlspilot renew: %d of %d certificates not renewed: %d failed, %d waiting to retry after a failed attempt\n",
			failed+waiting, all, failed, waiting)
	case err != nil:
		printError(stderr, "tlspilot renew: ", err)
	default:
		return 0
	}
	return 1
}

const revokeSummary = `Revokes the certificate of NAME at the CA (RFC 8555 §7.6) and, while the
name is still configured, obtains a replacement at once; a running daemon
on the same storage serves the replacement within 15 s. Exits 0 when
revoked and replaced; 1 otherwise, having printed "revoked NAME" if only
the replacement failed (it is retried as a failed renewal is).`

func revokeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("revoke", "[--config FILE] [--reason REASON] NAME", revokeSummary, stdout, stderr)
	reason := cf.String("reason", "unspecified", "keyCompromise, superseded, cessationOfOperation or unspecified")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	if cf.NArg() != 1 {
		fmt.Fprintln(stderr, "tlspilot revoke: name exactly one NAME")
		return 2
	}
	r, err := tlspilot.ParseRevocationReason(*reason)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot revoke: %v\n", err)
		return 2
	}
	cfg, err := cf.load()
	if err != nil {
		printError(stderr, "", err)
		return 1
	}
	if err := nothingStored(cfg, cf.Arg(0)); err != nil {
		printError(stderr, "tlspilot revoke: ", err)
		return 1
	}
	m, stop, err := cf.managerOf(ctx, cfg, stderr)
	if err != nil {
		printError(stderr, "", err)
		return 1
	}
	defer stop()
	err = m.Revoke(ctx, cf.Arg(0), r)
	var re *tlspilot.ReplacementError
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "revoked %s (%s)\n", cf.Arg(0), r)
		return 0
	case errors.As(err, &re):
		fmt.Fprintf(stdout, "revoked %s (%s)\n", cf.Arg(0), r)
		printError(stderr, "tlspilot revoke: no replacement yet, it is retried as a failed renewal is (a running daemon on the same storage retries it): ", re.Err)
	default:
		printError(stderr, "tlspilot revoke: ", err)
	}
	return 1
}

// manager loads the config and builds the command's Manager (cliManager).
func (cf *commandFlags) manager(ctx context.Context, stderr io.Writer) (*tlspilot.Manager, func(), error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, nil, err
	}
	return cf.managerOf(ctx, cfg, stderr)
}

// managerOf builds the command's Manager for a config already loaded.
func (cf *commandFlags) managerOf(ctx context.Context, cfg *config.Config, stderr io.Writer) (*tlspilot.Manager, func(), error) {
	if err := asStorageOwner(cfg, cf.Name()); err != nil {
		return nil, nil, err
	}
	return cliManager(ctx, cfg, stderr)
}

// nothingStored refuses to revoke name from a storage directory that does
// not exist: it holds no certificate, and opening it for the Manager
// would create it and a key-encryption key, owned by whoever ran revoke.
func nothingStored(cfg *config.Config, name string) error {
	if config.IsDatabaseURL(cfg.Storage) {
		return nil
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("revoke %s: no certificate for this name: the storage %s does not exist (nothing was obtained with this config, or serve uses another storage)", name, dir)
	}
	return nil
}

// cliManager builds a Manager for a one-off command on the config's
// storage and certificates, and answers challenges on the config's ports
// when no daemon holds them. stop releases the ports.
//
// The config's notify_* hooks are told of what the command does (a
// failed renewal, a revocation), as serve's are of what it does: no
// other process would send them. stop waits for them, up to
// notify_timeout.
func cliManager(ctx context.Context, cfg *config.Config, stderr io.Writer) (*tlspilot.Manager, func(), error) {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mcfg, err := managerConfig(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	ntf, err := startHooks(cfg, logger)
	if err != nil {
		// The hooks must not stop a renewal or a revocation.
		logger.Warn("notifications off for this command", "error", err)
		ntf = &hooks{}
	}
	ntf.configure(&mcfg)
	m, err := tlspilot.New(ctx, mcfg)
	if err == nil {
		err = m.ManageCerts(ctx, configuredCerts(cfg)...)
	}
	if err != nil {
		ntf.close(logger)
		return nil, nil, newError(cfg, err)
	}
	answering := answerChallenges(m, cfg, logger)
	return m, func() { answering(); ntf.close(logger) }, nil
}

// answerChallenges serves m's http-01 and tls-alpn-01 answers on the
// config's ports if they are free; a running daemon holding them answers
// from the storage instead. It binds nothing when no certificate answers
// there (no site, and every [[certificate]] with dns-01, challenge_dir
// or standalone): a standalone listener on http_listen's address, as
// certbot's standalone lineages are imported, could not bind after it.
func answerChallenges(m *tlspilot.Manager, cfg *config.Config, log *slog.Logger) func() {
	if len(cfg.Sites) == 0 && !needsListeners(cfg) {
		return func() {}
	}
	var servers []*http.Server
	if l, err := net.Listen("tcp", cfg.HTTPListen); err == nil {
		s := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.Serve(l) }()
		servers = append(servers, s)
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		log.Warn("cannot answer http-01 here; relying on a daemon sharing the storage", "address", cfg.HTTPListen, "error", err)
	}
	if l, err := net.Listen("tcp", cfg.HTTPSListen); err == nil {
		s := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: m.ChallengeTLSConfig()}
		go func() { _ = s.ServeTLS(l, "", "") }()
		servers = append(servers, s)
	}
	return func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
}

// progress shows the step of each certificate: one line per certificate
// updated in place on a terminal, plain lines otherwise.
type progress struct {
	out io.Writer
	dns func() dns01.Waiting // the dns-01 records not yet served everywhere
	p   *mpb.Progress        // nil when out is not a terminal
	mu  sync.Mutex
	bar map[string]*progressLine
	// last is the last step of each certificate, for failures.
	last map[string]string
}

// progressLine is one certificate's line. Its step is read by the bar's
// decorator on mpb's goroutines without pr.mu: a decorator taking pr.mu
// deadlocked with step and wait, which hold it while they call into the
// bar (SetCurrent, Completed), which waits for a render under way.
type progressLine struct {
	bar  *mpb.Bar
	step atomic.Pointer[string]
}

func newProgress(out io.Writer, dns func() dns01.Waiting) *progress {
	pr := &progress{out: out, dns: dns, bar: make(map[string]*progressLine), last: make(map[string]string)}
	// A terminal whose size is unknown (0 columns) would show nothing:
	// plain lines then.
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) && termWidth(f) > 0 {
		pr.p = mpb.New(mpb.WithOutput(out), mpb.WithRefreshRate(100*time.Millisecond))
	}
	return pr
}

func termWidth(f *os.File) int {
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}

// step reports that certificate id started step.
func (pr *progress) step(id, step string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.last[id] = step
	if pr.p == nil {
		fmt.Fprintf(pr.out, "%s: %s\n", id, oneline.Escape(pr.describe(step)))
		return
	}
	l := pr.bar[id]
	if l == nil {
		l = &progressLine{}
		l.step.Store(&step)
		l.bar = pr.p.New(1, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			return id + ": " + oneline.Escape(pr.describe(*l.step.Load()))
		})))
		pr.bar[id] = l
	}
	l.step.Store(&step)
	if isFinal(step) {
		l.bar.SetCurrent(1)
	}
}

// describe spells out a step: waiting for DNS says for how many records.
func (pr *progress) describe(step string) string {
	if step == tlspilot.StepDNS {
		if w := pr.dns(); w.Total > 0 {
			return fmt.Sprintf("waiting for %d of %d DNS records", w.Missing, w.Total)
		}
	}
	if strings.HasPrefix(step, tlspilot.StepRetryWait) {
		return step + " after a failed attempt (--force tries now)"
	}
	return step
}

// failures returns how many certificates ended with StepFailed, how
// many with StepRetryWait (their last attempt failed: a renewal that is
// due but held back), and how many were reported at all.
func (pr *progress) failures() (failed, waiting, all int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, step := range pr.last {
		switch {
		case strings.HasPrefix(step, tlspilot.StepFailed):
			failed++
		case strings.HasPrefix(step, tlspilot.StepRetryWait):
			waiting++
		}
	}
	return failed, waiting, len(pr.last)
}

// wait ends the display.
func (pr *progress) wait() {
	if pr.p == nil {
		return
	}
	pr.mu.Lock()
	bars := make([]*mpb.Bar, 0, len(pr.bar))
	for _, l := range pr.bar {
		bars = append(bars, l.bar)
	}
	pr.mu.Unlock()
	for _, b := range bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	pr.p.Wait()
}

func isFinal(step string) bool {
	return step == tlspilot.StepDone || step == tlspilot.StepNotDue ||
		strings.HasPrefix(step, tlspilot.StepFailed) || strings.HasPrefix(step, tlspilot.StepRetryWait)
}
