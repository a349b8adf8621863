package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/oneline"
)

// commandFlags is a subcommand's flag set with the common --config (-c).
// Flags may come before or after the positional arguments.
type commandFlags struct {
	*flag.FlagSet
	config *string     // the config file named, "" for the default
	cfgs   *configFlag // --config and -c
	args   []string    // positional arguments
	stderr io.Writer
}

// Args returns the positional arguments.
func (cf *commandFlags) Args() []string { return cf.args }

// NArg returns the number of positional arguments.
func (cf *commandFlags) NArg() int { return len(cf.args) }

// Arg returns the i-th positional argument.
func (cf *commandFlags) Arg(i int) string { return cf.args[i] }

func newFlags(name, usage, summary string, stdout, stderr io.Writer) *commandFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &commandFlags{FlagSet: fs, stderr: stderr}
	cf.config = new(string)
	cf.cfgs = &configFlag{path: cf.config}
	fs.Var(cf.cfgs, "config", "config `FILE` (default ./tlspilot.toml, then /etc/tlspilot/tlspilot.toml)")
	fs.Var(cf.cfgs, "c", "short for --config `FILE`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tlspilot %s %s\n\n%s\n\n", name, usage, summary)
		fs.PrintDefaults()
	}
	return cf
}

// configFlag is --config (and -c): one file; with several, clean takes
// each (one per process sharing the storage), and any other command
// refuses the second rather than silently using the last.
type configFlag struct {
	path    *string  // the first file named
	more    []string // the files after the first (several)
	several bool
}

func (f *configFlag) String() string {
	if f == nil || f.path == nil {
		return ""
	}
	return *f.path
}

func (f *configFlag) Set(v string) error {
	switch {
	case *f.path == "":
		*f.path = v
	case f.several:
		f.more = append(f.more, v)
	default:
		return fmt.Errorf("a second config file (%s after %s): this command reads one", v, *f.path)
	}
	return nil
}

// parse parses args; ok is false when the command should end with code.
func (cf *commandFlags) parse(args []string, stdout io.Writer) (code int, ok bool) {
	for {
		// The flag package prints its complaint and the usage as it
		// parses: keep them until it is known whether help (stdout) or an
		// error (stderr) was asked for.
		var msg bytes.Buffer
		cf.SetOutput(&msg)
		err := cf.Parse(args)
		cf.SetOutput(cf.stderr)
		if err == flag.ErrHelp {
			cf.SetOutput(stdout)
			cf.Usage()
			return 0, false
		}
		if err != nil {
			_, _ = cf.stderr.Write(msg.Bytes())
			return 2, false
		}
		rest := cf.FlagSet.Args()
		if len(rest) == 0 {
			return 0, true
		}
		if rest[0] == "--" {
			cf.args = append(cf.args, rest[1:]...)
			return 0, true
		}
		cf.args = append(cf.args, rest[0])
		args = rest[1:]
	}
}

// load reads the config file named by --config, or the default one.
func (cf *commandFlags) load() (*config.Config, error) {
	path := *cf.config
	if path == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	return config.Load(path)
}

const statusSummary = `Reports every managed certificate: state, expiry, next renewal, last error.
Reads the storage only (no key, no lock, no CA): works with or without a
running daemon, and for a user who can only read the storage.
Exit codes as a Nagios plugin: 0 OK; 1 WARNING (a certificate expiring or
failing to renew); 2 CRITICAL (one expired, or without a certificate for
over an hour); 3 UNKNOWN (config or storage unreadable, or invalid arguments).`

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("status", "[--config FILE] [--json] [NAME...]", statusSummary, stdout, stderr)
	asJSON := cf.Bool("json", false, "print the status document as JSON (docs/status.md)")
	if code, ok := cf.parse(args, stdout); !ok {
		if code != 0 {
			// Invalid arguments are UNKNOWN to a Nagios plugin: 2 would
			// page as CRITICAL, a certificate expired.
			code = tlspilot.ExitUnknown
		}
		return code
	}
	if code, ok := agentStatusCmd(ctx, *cf.config, cf.Args(), *asJSON, stdout, stderr); ok {
		return code // an agent's config (agentrun.go)
	}
	cfg, err := cf.load()
	if err != nil {
		return report(stdout, stderr, *asJSON, tlspilot.UnknownReport(time.Now(), err))
	}
	r := selectNames(readStatus(ctx, cfg), cf.Args())
	if r.ExitCode != tlspilot.ExitUnknown {
		r.Note = missingStorage(cfg)
	}
	code := report(stdout, stderr, *asJSON, r)
	if !*asJSON && r.Note != "" {
		fmt.Fprintln(stdout, "\nnote: "+oneline.Escape(r.Note))
	}
	return code
}

// missingStorage explains certificates that are pending with no trace of
// an attempt: the config's storage directory does not exist, because
// serve has not run yet with it or because the path is not the one serve
// uses. It is "" when the directory exists or nothing is ordered.
func missingStorage(cfg *config.Config) string {
	if config.IsDatabaseURL(cfg.Storage) || len(configuredCerts(cfg)) == 0 {
		return ""
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return ""
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return fmt.Sprintf("the storage %s does not exist: no certificate has been obtained with this config yet (serve creates it), or serve uses another storage", dir)
}

// readStatus is the status of cfg's certificates: those tlspilot keeps,
// read from the storage, and the cert_file pairs of its sites, graded by
// their expiry (a serve that only serves files another process writes
// is watched like any other). A config with no certificate of its own
// has no account to report.
func readStatus(ctx context.Context, cfg *config.Config) tlspilot.StatusReport {
	own := configuredCerts(cfg)
	r := tlspilot.ReadStatus(ctx, statusConfig(cfg), own...)
	if r.ExitCode == tlspilot.ExitUnknown && len(r.Certificates) == 0 {
		// The storage or the config could not be read. A report made
		// UNKNOWN by one damaged record lists the others, and the files
		// are added to it as to any (selectNames grades them alone).
		return r
	}
	certs := r.Certificates
	for _, s := range cfg.Sites {
		if s.CertFile != "" {
			certs = append(certs, tlspilot.FileStatus(s.CertFile, s.Names, r.Time, cfg.WarnWindow))
		}
	}
	acct := r.Account
	if len(own) == 0 && len(r.Certificates) == 0 {
		acct = nil
	}
	out := tlspilot.NewStatusReport(r.Time, certs, acct)
	out.Storage = r.Storage
	return out
}

// statusConfig is the part of the library's Config that status reads:
// no secret, no DNS provider.
func statusConfig(cfg *config.Config) tlspilot.Config {
	mc := tlspilot.Config{CA: cfg.CA, Email: cfg.Email, WarnWindow: cfg.WarnWindow}
	if err := storageConfig(cfg, &mc, nil); err != nil {
		mc.Storage = unavailable{err}
	}
	for _, kt := range cfg.KeyTypes {
		mc.KeyTypes = append(mc.KeyTypes, tlspilot.KeyType(kt))
	}
	return mc
}

// selectNames is r for the certificates covering any of names (all of
// them without names), graded again, or UNKNOWN if a name has none. A
// report that lists no certificate because the storage could not be read
// is returned as it is; one that is UNKNOWN because a certificate's
// record cannot be read is filtered like any: a certificate not named is
// not what is asked about.
func selectNames(r tlspilot.StatusReport, names []string) tlspilot.StatusReport {
	if len(names) == 0 || r.ExitCode == tlspilot.ExitUnknown && len(r.Certificates) == 0 {
		return r
	}
	f, err := filterReport(r, names)
	if err != nil {
		return tlspilot.UnknownReport(r.Time, err)
	}
	return f
}

// filterReport keeps the certificates covering any of names, and grades
// them again; the note and storage status stay.
func filterReport(r tlspilot.StatusReport, names []string) (tlspilot.StatusReport, error) {
	var keep []tlspilot.CertStatus
	for _, n := range names {
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			return r, err
		}
		found := false
		for _, c := range r.Certificates {
			if slices.Contains(c.Names, nn) && !slices.ContainsFunc(keep, func(k tlspilot.CertStatus) bool { return k.ID == c.ID }) {
				keep = append(keep, c)
				found = true
			} else if slices.Contains(c.Names, nn) {
				found = true
			}
		}
		if !found {
			return r, fmt.Errorf("%s: no certificate for this name", n)
		}
	}
	f := tlspilot.NewStatusReport(r.Time, keep, r.Account)
	f.Note, f.Storage = r.Note, r.Storage // about the report, whichever names
	return f, nil
}

// report prints r and returns its exit code.
func report(stdout, stderr io.Writer, asJSON bool, r tlspilot.StatusReport) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return r.ExitCode
	}
	if r.Error != "" {
		msg := oneline.Escape(r.Error)
		fmt.Fprintf(stderr, "tlspilot status: %s\n", msg)
		if len(r.Certificates) == 0 {
			fmt.Fprintf(stdout, "UNKNOWN: %s\n", msg)
			return r.ExitCode
		}
		// One record unreadable: the others are listed still.
	}
	printTable(stdout, r)
	return r.ExitCode
}

// printTable prints the report for a person: a summary line (as a Nagios
// plugin's first line), the account, then one row per certificate with
// its details and last error in full below it. Texts from outside are
// printed through textSafe.
func printTable(w io.Writer, r tlspilot.StatusReport) {
	r = textSafe(r)
	first := summaryLine(r)
	if r.Error != "" {
		first = r.Error // why it is UNKNOWN
	}
	fmt.Fprintf(w, "%s: %s\n", r.Status, first)
	if a := r.Account; a != nil {
		fmt.Fprintf(w, "account: %s at %s (%s)\n", orDash(a.URL), a.CA, a.State)
		if a.Problem != "" {
			fmt.Fprintf(w, "  problem: %s\n", a.Problem)
		}
	}
	if len(r.Certificates) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tNAMES\tKEY\tNOT AFTER\tDAYS LEFT\tNEXT RENEWAL\tATTEMPTS")
	for _, c := range r.Certificates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.State, strings.Join(c.Names, ","), c.KeyType,
			stamp(c.NotAfter), daysLeft(c, r.Time), stamp(nextRenewal(c)), c.Attempts)
	}
	_ = tw.Flush()
	for _, c := range r.Certificates {
		fmt.Fprintf(w, "\n%s  %s\n", c.ID, c.State)
		fmt.Fprintf(w, "  ca %s, issuer %s, serial %s\n", orDash(c.CA), orDash(c.Issuer), orDash(c.Serial))
		if !c.RevokedAt.IsZero() {
			fmt.Fprintf(w, "  revoked %s\n", stamp(c.RevokedAt))
		}
		if c.LastError != "" {
			fmt.Fprintf(w, "  last error (%s): %s\n", stamp(c.LastAttempt), c.LastError)
		}
		if d := c.Deploy; d != nil {
			printDeploy(w, d)
		}
		for _, a := range c.AnswersLeft {
			fmt.Fprintf(w, "  answer left behind (%s): %s %s\n", a.Type, a.Name, a.Value)
		}
	}
}

// summaryLine counts certificates by state, most urgent first.
func summaryLine(r tlspilot.StatusReport) string {
	if len(r.Certificates) == 0 {
		return "no certificates"
	}
	var parts []string
	count := map[string]int{}
	var order []string
	for _, c := range r.Certificates {
		if count[c.State] == 0 {
			order = append(order, c.State)
		}
		count[c.State]++
	}
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
	}
	if n := deployFailing(r); n > 0 {
		parts = append(parts, fmt.Sprintf("%d deploy failing", n))
	}
	if n := answersLeft(r); n > 0 {
		parts = append(parts, plural(n, "answer")+" left behind")
	}
	return strings.Join(parts, ", ")
}

// answersLeft counts the challenge answers left published.
func answersLeft(r tlspilot.StatusReport) int {
	n := 0
	for _, c := range r.Certificates {
		n += len(c.AnswersLeft)
	}
	return n
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

// daysLeft is the DAYS LEFT column at now: one decimal, or "expired"
// once the certificate has (not "-0.0" in the minutes after).
func daysLeft(c tlspilot.CertStatus, now time.Time) string {
	switch {
	case !c.Serving:
		return "-"
	case !c.NotAfter.After(now):
		return "expired"
	}
	return fmt.Sprintf("%.1f", c.DaysLeft)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nextRenewal is the NEXT RENEWAL column: the renewal time drawn in the
// certificate's window, or, while attempts fail, without a certificate or
// before a time is drawn, the next attempt (NextRenewal, which is also
// when renewal information is next asked for).
func nextRenewal(c tlspilot.CertStatus) time.Time {
	if c.Attempts > 0 || !c.Serving || c.RenewAt.IsZero() || c.State == tlspilot.StateRevoked {
		return c.NextRenewal
	}
	return c.RenewAt
}

// textSafe returns a copy of r whose texts from outside tlspilot (the
// errors of hooks, CAs and deploy commands, names, URLs, certificate
// fields read from storage) are passed through oneline.Escape, for a report
// printed as text: a hook's stderr must not move the cursor, recolour
// the terminal or start a line of its own that reads as tlspilot's
// ("OK: 1 valid"). JSON escapes these itself.
func textSafe(r tlspilot.StatusReport) tlspilot.StatusReport {
	r.Error, r.Note = oneline.Escape(r.Error), oneline.Escape(r.Note)
	if r.Account != nil {
		a := *r.Account
		a.CA, a.URL, a.State, a.Problem = oneline.Escape(a.CA), oneline.Escape(a.URL), oneline.Escape(a.State), oneline.Escape(a.Problem)
		r.Account = &a
	}
	certs := make([]tlspilot.CertStatus, len(r.Certificates))
	for i, c := range r.Certificates {
		c.ID, c.State, c.CA, c.Issuer = oneline.Escape(c.ID), oneline.Escape(c.State), oneline.Escape(c.CA), oneline.Escape(c.Issuer)
		c.Serial, c.LastError, c.LastProblem = oneline.Escape(c.Serial), oneline.Escape(c.LastError), oneline.Escape(c.LastProblem)
		c.KeyType, c.CertFile = tlspilot.KeyType(oneline.Escape(string(c.KeyType))), oneline.Escape(c.CertFile)
		names := make([]string, len(c.Names))
		for j, n := range c.Names {
			names[j] = oneline.Escape(n)
		}
		c.Names = names
		left := make([]tlspilot.LeftAnswer, len(c.AnswersLeft))
		for j, a := range c.AnswersLeft {
			left[j] = tlspilot.LeftAnswer{Type: oneline.Escape(a.Type), Name: oneline.Escape(a.Name), Value: oneline.Escape(a.Value)}
		}
		c.AnswersLeft = left
		if c.Deploy != nil {
			d := *c.Deploy
			d.State, d.Serial, d.LastError = oneline.Escape(d.State), oneline.Escape(d.Serial), oneline.Escape(d.LastError)
			c.Deploy = &d
		}
		certs[i] = c
	}
	r.Certificates = certs
	return r
}

// printError prints err to w after prefix, through oneline.Escape: an error
// carries what a CA, a hook or the storage said. Errors joined (one per
// certificate, errors.Join) get a line each, with the prefix.
func printError(w io.Writer, prefix string, err error) {
	for _, e := range joined(err) {
		fmt.Fprintf(w, "%s%s\n", prefix, oneline.Escape(e.Error()))
	}
}

// joined returns the errors err joins (errors.Join, nested; a config
// file's problems, config.ErrorList, one per line), or err.
func joined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	parts := j.Unwrap()
	msgs := make([]string, len(parts))
	for i, p := range parts {
		msgs[i] = p.Error()
	}
	if strings.Join(msgs, "\n") != err.Error() {
		return []error{err} // fmt.Errorf with several %w: one message
	}
	var out []error
	for _, p := range parts {
		out = append(out, joined(p)...)
	}
	return out
}
