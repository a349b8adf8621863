package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
	certbotdir "github.com/tlspilot/tlspilot/internal/certbot"
	"github.com/tlspilot/tlspilot/internal/config"
)

const importSummary = `Takes over certbot's certificates (DIR: certbot's config directory,
default /etc/letsencrypt) without ordering new ones: for each lineage of
renewal/*.conf it stores the current certificate and key (and certbot's
ACME account, when it is for the config's CA and storage has none yet)
and appends a [[certificate]] table to the config file that deploys to
the same live/ files, so the certificate paths in web server configs stay
as they are. A lineage from another CA than the config's ca is refused:
it would be replaced at the first run.

Without --apply it prints what it would do and changes nothing. With
--apply it does it, replaces each live/ symlink by a regular file with
the same content (archive/ is left as it is), and says how to stop
certbot's own renewal. A lineage that cannot be carried over is refused
with the file, line and key, and what to do; the others are imported.
Running it again reports what is already imported. Exits 0 when every
lineage is imported (or already was), 1 otherwise. See docs/certbot.md.`

// importCmd runs "tlspilot import certbot".
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "certbot" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
			args = []string{"certbot", "--help"}
		} else {
			fmt.Fprintln(stderr, "tlspilot import: name what to import from: tlspilot import certbot [--config FILE] [--apply] [DIR]")
			return 2
		}
	}
	cf := newFlags("import certbot", "[--config FILE] [--apply] [DIR]", importSummary, stdout, stderr)
	apply := cf.Bool("apply", false, "do it (without: print what would be done, change nothing)")
	if code, ok := cf.parse(args[1:], stdout); !ok {
		return code
	}
	if cf.NArg() > 1 {
		fmt.Fprintf(stderr, "tlspilot import certbot: unexpected argument %q\n", cf.Arg(1))
		return 2
	}
	dir := certbotdir.DefaultDir
	if cf.NArg() == 1 {
		dir = cf.Arg(0)
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	im := &importer{cfg: cfg, dir: dir, out: stdout, errw: stderr, apply: *apply}
	return im.run(ctx)
}

// importer is one run of "import certbot".
type importer struct {
	cfg   *config.Config
	dir   string
	out   io.Writer
	errw  io.Writer
	apply bool
	plans []*lineagePlan
	fails int // lineages refused or failed
}

// lineagePlan is what is done with one lineage.
type lineagePlan struct {
	l        *certbotdir.Lineage
	set      certbotdir.Settings
	names    []string
	inConfig int    // line of the [[certificate]] already importing it, or 0
	entry    string // the [[certificate]] table to append, if not inConfig
}

// run reads the certbot directory, plans each lineage, and prints the
// plan (dry run) or applies it; it returns the exit code.
func (im *importer) run(ctx context.Context) int {
	lineages, problems, err := certbotdir.ReadDir(im.dir)
	if err != nil {
		fmt.Fprintf(im.errw, "tlspilot import certbot: %v\n", err)
		return 1
	}
	for _, p := range problems {
		im.refuse(p)
	}
	for _, l := range lineages {
		if p, err := im.plan(l); err != nil {
			im.refuse(err)
		} else {
			im.plans = append(im.plans, p)
		}
	}
	if len(lineages)+len(problems) == 0 {
		fmt.Fprintf(im.out, "no certbot lineage in %s\n", filepath.Join(im.dir, "renewal"))
		return 0
	}
	im.hookNotes()
	if !im.apply {
		im.dryRun(ctx)
	} else if err := im.applyAll(ctx); err != nil {
		fmt.Fprintf(im.errw, "tlspilot import certbot: %v\n", err)
		return 1
	}
	if im.fails > 0 {
		return 1
	}
	return 0
}

// hookNotes says that certbot's hook directories are not carried over.
func (im *importer) hookNotes() {
	for _, kind := range []string{"pre", "deploy", "post"} {
		d := filepath.Join(im.dir, "renewal-hooks", kind)
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			fmt.Fprintf(im.out, "note: %s is not carried over: tlspilot runs only a certificate's reload command\n", filepath.Join(d, e.Name()))
		}
	}
}

// refuse reports a lineage that is not imported.
func (im *importer) refuse(err error) {
	im.fails++
	fmt.Fprintf(im.errw, "refused: %v\n", err)
}

// plan maps lineage l onto a [[certificate]] table, or says why not.
func (im *importer) plan(l *certbotdir.Lineage) (*lineagePlan, error) {
	set, err := l.Settings()
	if err != nil {
		return nil, err
	}
	p := &lineagePlan{l: l, set: set}
	for _, n := range l.Names() {
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			return nil, l.Conf.Errorf("", "fullchain", "%s: name %q: %w", l.Fullchain, n, err)
		}
		p.names = append(p.names, nn)
	}
	if line, err := im.claimed(l, p.names); err != nil || line > 0 {
		p.inConfig = line
		return p, err
	}
	if l.Server != im.cfg.CA {
		// Served under a config naming another CA, the certificate would
		// be replaced at the first run (as when ca changes): nginx's
		// working certificate swapped for, say, a staging one.
		return nil, l.Conf.Errorf("renewalparams", "server", "%s is not the config's ca (%s): tlspilot would replace this certificate with one from that CA at its first run; "+
			"to take it over as it is, set ca = %q in %s (change ca afterwards to move to another CA)", l.Server, im.cfg.CA, caSetting(l.Server), im.cfg.File)
	}
	im.besideServe(&p.set)
	p.entry = entry(l, p.set, p.names, time.Now())
	return p, nil
}

// besideServe leaves out a standalone address on the port of
// http_listen when the config has sites: serve, run from it, holds that
// port and answers http-01 for the [[certificate]] tables from the
// storage, and two listeners on one address are refused.
func (im *importer) besideServe(set *certbotdir.Settings) {
	if set.Standalone == "" || len(im.cfg.Sites) == 0 {
		return
	}
	_, port, err := net.SplitHostPort(set.Standalone)
	_, servePort, serr := net.SplitHostPort(im.cfg.HTTPListen)
	if err != nil || serr != nil || port != servePort {
		return
	}
	set.Notes = append(set.Notes, fmt.Sprintf("standalone = %q not carried over: serve, run from %s, listens on port %s (http_listen) and answers http-01 for this certificate",
		set.Standalone, im.cfg.File, port))
	set.Standalone = ""
}

// caSetting is how a config names the CA at url: its shorthand if it has
// one.
func caSetting(url string) string {
	for _, name := range []string{"letsencrypt", "letsencrypt-staging"} {
		if u, _ := config.CAShorthand(name); u == url {
			return name
		}
	}
	return url
}

// claimed returns the line of the config's [[certificate]] with exactly
// names, or an error when another table of the config claims one of them.
func (im *importer) claimed(l *certbotdir.Lineage, names []string) (int, error) {
	want := slices.Sorted(slices.Values(names))
	for _, c := range im.cfg.Certificates {
		if slices.Equal(slices.Sorted(slices.Values(c.Names)), want) {
			return c.Line, nil
		}
		for _, n := range c.Names {
			if slices.Contains(names, n) {
				return 0, fmt.Errorf("%s: %s is already in %s at line %d ([[certificate]] with other names): merge them by hand", l.Conf.File, n, im.cfg.File, c.Line)
			}
		}
	}
	for _, s := range im.cfg.Sites {
		for _, n := range s.Names {
			if slices.Contains(names, n) {
				return 0, fmt.Errorf("%s: %s is served by the [[site]] at %s line %d: a name has one certificate", l.Conf.File, n, im.cfg.File, s.Line)
			}
		}
	}
	return 0, nil
}

// dryRun prints what --apply would do, from a read-only look at the
// storage.
func (im *importer) dryRun(ctx context.Context) {
	var certs []tlspilot.Cert
	for _, p := range im.plans {
		certs = append(certs, tlspilot.Cert{Names: p.names, KeyTypes: []tlspilot.KeyType{tlspilot.KeyType(p.set.KeyType)}})
	}
	r := tlspilot.ReadStatus(ctx, statusConfig(im.cfg), certs...)
	im.dryRunAccounts(r.Account)
	for _, p := range im.plans {
		verb := "would store"
		for _, c := range r.Certificates {
			if c.Serial == fmt.Sprintf("%x", p.l.Leaf.SerialNumber) && slices.Equal(c.Names, p.names) {
				verb = "already stored:"
			}
		}
		im.describe(p, verb)
	}
	if n := len(im.pending()); n > 0 {
		fmt.Fprintf(im.out, "\nwould append %d [[certificate]] table(s) to %s:\n%s", n, im.cfg.File, strings.Join(im.pending(), ""))
	}
	fmt.Fprintf(im.out, "\n%s\ndry run: nothing changed; run again with --apply to import\n", im.tally())
}

// tally counts the lineages: to import, already imported, refused (the
// refusals are on stderr).
func (im *importer) tally() string {
	already := 0
	for _, p := range im.plans {
		if p.inConfig > 0 {
			already++
		}
	}
	return fmt.Sprintf("%d lineage(s): %d to import, %d already imported, %d refused", len(im.plans)+im.fails, len(im.plans)-already, already, im.fails)
}

// dryRunAccounts says what would become of the certbot accounts the
// plans use, given the stored account (nil if unknown).
func (im *importer) dryRunAccounts(stored *tlspilot.AccountStatus) {
	seen := map[string]bool{}
	for _, p := range im.plans {
		id := p.l.Account
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if p.l.Server != im.cfg.CA {
			fmt.Fprintf(im.out, "account %s: at %s, not the config's ca %s: not imported\n", id, p.l.Server, im.cfg.CA)
			continue
		}
		a, err := certbotdir.ReadAccount(im.dir, p.l.Server, id)
		switch {
		case err != nil:
			fmt.Fprintf(im.out, "account %s: not importable: %v\n", id, err)
		case stored != nil && stored.URL == a.URL:
			fmt.Fprintf(im.out, "account %s (%s): already stored\n", id, a.URL)
		case stored != nil && stored.URL != "":
			fmt.Fprintf(im.out, "account %s (%s): not imported, storage has account %s, which is kept\n", id, a.URL, stored.URL)
		default:
			fmt.Fprintf(im.out, "account %s (%s): would store as tlspilot's account at %s\n", id, a.URL, im.cfg.CA)
		}
	}
}

// pending returns the tables to append.
func (im *importer) pending() []string {
	var out []string
	for _, p := range im.plans {
		if p.entry != "" {
			out = append(out, p.entry)
		}
	}
	return out
}

// describe prints one lineage's plan.
func (im *importer) describe(p *lineagePlan, verb string) {
	l := p.l
	fmt.Fprintf(im.out, "%s: %s, serial %x, expires %s, key %s\n", l.Name, strings.Join(p.names, " "),
		l.Leaf.SerialNumber, l.Leaf.NotAfter.UTC().Format(time.DateOnly), p.set.KeyType)
	if p.inConfig > 0 {
		fmt.Fprintf(im.out, "  already imported: [[certificate]] at %s line %d\n", im.cfg.File, p.inConfig)
	}
	if verb != "" {
		fmt.Fprintf(im.out, "  %s the certificate and key (no new order)\n", verb)
	}
	if verb == "would store" {
		fmt.Fprintf(im.out, "  would replace the live/%s/*.pem symbolic links with regular files of the same content (archive/ stays)\n", l.Name)
	}
	for _, n := range p.set.Notes {
		fmt.Fprintf(im.out, "  note: %s\n", n)
	}
}

// applyAll imports every planned lineage: account, certificates, config
// tables, then live/ files, and says how to stop certbot's renewal.
func (im *importer) applyAll(ctx context.Context) error {
	if len(im.plans) == 0 {
		return nil
	}
	logger := slog.New(slog.NewTextHandler(im.errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mcfg, err := managerConfig(im.cfg, logger)
	if err != nil {
		return err
	}
	m, err := tlspilot.New(ctx, mcfg)
	if err != nil {
		return newError(im.cfg, err)
	}
	accounts := im.importAccounts(ctx, m)
	var done []*lineagePlan
	for _, p := range im.plans {
		if err := im.importCert(ctx, m, p, accounts[p.l.Account]); err != nil {
			im.refuse(err)
			continue
		}
		done = append(done, p)
	}
	if err := im.appendConfig(done); err != nil {
		return err
	}
	for _, p := range done {
		if err := unlinkLive(p.l); err != nil {
			im.refuse(fmt.Errorf("%s: %w", p.l.Name, err))
		}
	}
	im.howToStopCertbot(done)
	return nil
}

// importAccounts imports certbot's accounts at the config's CA that the
// plans use, and returns which ones are now the Manager's account.
func (im *importer) importAccounts(ctx context.Context, m *tlspilot.Manager) map[string]bool {
	same := map[string]bool{}
	tried := map[string]bool{}
	for _, p := range im.plans {
		id := p.l.Account
		if p.l.Server != im.cfg.CA || id == "" || tried[id] {
			continue
		}
		tried[id] = true
		a, err := certbotdir.ReadAccount(im.dir, p.l.Server, id)
		if err != nil {
			fmt.Fprintf(im.out, "account %s not imported: %v\n", id, err)
			continue
		}
		res, err := m.ImportAccount(ctx, a.Key, a.URL)
		switch {
		case err != nil:
			fmt.Fprintf(im.out, "account %s not imported: %v\n", id, err)
		case res == tlspilot.ImportKept:
			fmt.Fprintf(im.out, "account %s (%s) not imported: storage already has an account for %s; it is kept\n", id, a.URL, im.cfg.CA)
		default:
			fmt.Fprintf(im.out, "account %s (%s): %s\n", id, a.URL, res)
			same[id] = true
		}
	}
	return same
}

// importCert stores a lineage's certificate and key.
func (im *importer) importCert(ctx context.Context, m *tlspilot.Manager, p *lineagePlan, sameAccount bool) error {
	res, err := m.Import(ctx, tlspilot.Imported{Names: p.names, ChainPEM: p.l.ChainPEM, Key: p.l.Key,
		CA: p.l.Server, SameAccount: sameAccount})
	if err != nil {
		return fmt.Errorf("%s: %w", p.l.Conf.File, err)
	}
	im.describe(p, "")
	fmt.Fprintf(im.out, "  certificate and key: %s (no new order)\n", res)
	if !sameAccount {
		fmt.Fprintln(im.out, "  note: certbot's account is not tlspilot's: the renewal is a new order, not an ARI replacement")
	}
	return nil
}

// appendConfig appends the tables of plans not yet in the config to the
// config file, keeping its content, mode and owner, written atomically,
// after checking that the result loads.
func (im *importer) appendConfig(plans []*lineagePlan) error {
	var add []string
	for _, p := range plans {
		if p.entry != "" {
			if p.set.ChallengeDir != "" {
				if err := os.MkdirAll(p.set.ChallengeDir, 0o755); err != nil {
					return fmt.Errorf("%s: challenge_dir: %w", p.l.Name, err)
				}
			}
			add = append(add, p.entry)
		}
	}
	if len(add) == 0 {
		return nil
	}
	path := im.cfg.File
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	text := old
	if len(text) > 0 && text[len(text)-1] != '\n' {
		text = append(text, '\n')
	}
	text = append(text, strings.Join(add, "")...)
	if err := writeConfig(path, text); err != nil {
		return err
	}
	fmt.Fprintf(im.out, "\nappended %d [[certificate]] table(s) to %s\n", len(add), path)
	return nil
}

// unlinkLive replaces the lineage's live/ symlinks by regular files.
func unlinkLive(l *certbotdir.Lineage) error {
	for _, p := range []string{l.Fullchain, l.Privkey, l.Cert, l.Chain} {
		if p == "" {
			continue
		}
		if err := certbotdir.Unlink(p); err != nil {
			return err
		}
	}
	return nil
}

// howToStopCertbot says how to stop certbot renewing what was imported.
func (im *importer) howToStopCertbot(done []*lineagePlan) {
	if len(done) == 0 {
		return
	}
	fmt.Fprintln(im.out, "\nNow stop certbot renewing these certificates (tlspilot renews them from now on):")
	if len(done) == len(im.plans) && im.fails == 0 {
		fmt.Fprintln(im.out, "  systemctl disable --now certbot.timer    # Debian/Ubuntu package (snap: snap.certbot.renew.timer)")
		fmt.Fprintln(im.out, "  rm -f /etc/cron.d/certbot                # the package's cron job, where there is no systemd")
		fmt.Fprintln(im.out, "or, to keep certbot for other certificates, move the imported renewal confs aside:")
	} else {
		fmt.Fprintln(im.out, "certbot keeps lineages that were not imported, so keep its timer and move the imported renewal confs aside:")
	}
	for _, p := range done {
		fmt.Fprintf(im.out, "  mv %s %s.imported\n", p.l.Conf.File, p.l.Conf.File)
	}
	fmt.Fprintln(im.out, "Do not run \"certbot delete\" on them: it removes the live/ files the servers read.")
	fmt.Fprintln(im.out, "Until then \"certbot renew\" fails on them (their live/ files are no longer symlinks) and changes nothing.")
	fmt.Fprintln(im.out, "If \"tlspilot certs\" runs as another user, hand the storage over now: tlspilot init --user USER")
	fmt.Fprintln(im.out, "(it keeps the imported account). Then run \"tlspilot certs\" (daemon) or \"tlspilot certs --once\" from a")
	fmt.Fprintln(im.out, "timer; see docs/certbot.md.")
}
