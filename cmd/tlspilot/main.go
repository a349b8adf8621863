// Command tlspilot is an HTTPS server that obtains and renews its own
// certificates through ACME.
//
//	tlspilot init [-c FILE] [--user USER]   create the storage, its KEK and the ACME account (once, as admin)
//	tlspilot serve [-c FILE]                serve the sites of the config file
//	tlspilot certs [-c FILE] [--once]       keep the [[certificate]] files of other software
//	tlspilot check [-c FILE | FILE]         validate the config and print what would be served
//	tlspilot status [-c FILE] [--json] [NAME...] every certificate's state, with Nagios exit codes
//	tlspilot renew [-c FILE] [--force] [NAME...] renew now what is due, or what is named
//	tlspilot revoke [-c FILE] [--reason R] NAME  revoke a certificate and obtain a replacement
//	tlspilot clean [-c FILE]... [--older-than 30d] remove stored certificates no longer configured
//	tlspilot import certbot [-c FILE] [--apply] [DIR] take over certbot's certificates without reissuing
//	tlspilot storage migrate --from A --to B copy a storage (directory, postgres://) into another
//	tlspilot issuer COMMAND [-c FILE] ...   the fleet issuer: ca, enroll, agents, audit, revoke-agent
//	tlspilot agent enroll -c FILE --token T  enrol a fleet agent with its issuer
//	tlspilot agent -c FILE [--once]          keep a fleet agent's certificates
//	tlspilot version                        print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/tlspilot/tlspilot/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `tlspilot: HTTPS with certificates that take care of themselves.

Usage:
  tlspilot init [-c FILE] [--user USER]         create the storage, KEK and ACME account (once, as administrator)
  tlspilot serve [-c FILE]                      serve the sites of the config file (SIGHUP reloads it)
  tlspilot certs [-c FILE] [--once]             keep the [[certificate]] PEM files of other software
  tlspilot check [-c FILE | FILE]               validate the config and print what would be served
  tlspilot status [-c FILE] [--json] [NAME...]  every certificate's state; Nagios exit codes
  tlspilot renew [-c FILE] [--force] [NAME...]  renew now what is due (or, forced, the named)
  tlspilot revoke [-c FILE] [--reason R] NAME   revoke at the CA and obtain a replacement
  tlspilot clean [-c FILE]... [--older-than 30d] [--dry-run]
                                                remove stored certificates (and stale OCSP responses) no longer configured
  tlspilot import certbot [-c FILE] [--apply] [DIR]
                                                take over certbot's certificates (dry run without --apply)
  tlspilot storage migrate --from A --to B      copy a storage (directory or postgres:// URL) into another
  tlspilot issuer [-c FILE]                     run the fleet issuer's API (issuer_listen)
  tlspilot issuer COMMAND [-c FILE] ...         the fleet issuer: ca, enroll, agents, audit, revoke-agent
  tlspilot agent enroll -c AGENT.toml --token T enrol a fleet agent with its issuer
  tlspilot agent -c AGENT.toml [--once]         keep a fleet agent's certificates (daemon, or one pass)
  tlspilot version                              print the version

-c FILE (--config FILE) defaults to ./tlspilot.toml, then /etc/tlspilot/tlspilot.toml.
Run "tlspilot help COMMAND" for a command's options.
`

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "init":
		return initCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "certs":
		return certsCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr)
	case "renew":
		return renewCmd(ctx, args[1:], stdout, stderr)
	case "revoke":
		return revokeCmd(ctx, args[1:], stdout, stderr)
	case "clean":
		return cleanCmd(ctx, args[1:], stdout, stderr)
	case "import":
		return importCmd(ctx, args[1:], stdout, stderr)
	case "storage":
		return storageCmd(ctx, args[1:], stdout, stderr)
	case "issuer":
		return issuerCmd(ctx, args[1:], stdout, stderr)
	case "agent":
		return agentCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "tlspilot", version())
		return 0
	case "help", "--help", "-help", "-h":
		if len(args) > 1 {
			return help(ctx, args[1], stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tlspilot: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// version returns the module version the binary was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" {
		return "(devel)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// userAgent names tlspilot and its version to the CA: "tlspilot/v1.2.0",
// or "tlspilot/devel" for a build outside a module version.
func userAgent() string {
	v := strings.Fields(version())[0]
	if v == "(devel)" {
		v = "devel"
	}
	return "tlspilot/" + v
}

// help prints the help of command, as "tlspilot COMMAND --help" does.
func help(ctx context.Context, command string, stdout, stderr io.Writer) int {
	switch command {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprint(stdout, "Usage: tlspilot version\n\nPrints the version of the module and the revision the binary was built from.\n")
		return 0
	}
	if code := run(ctx, []string{command, "--help"}, stdout, io.Discard); code != 0 {
		fmt.Fprintf(stderr, "tlspilot: unknown command %q\n\n%s", command, usage)
		return code
	}
	return 0
}

// flags parses the options of serve and check: the config file, with
// --config, -c or as the one argument. It returns the config path, or an
// exit code when parsing ended the command (help or error).
func flags(name, summary string, args []string, stdout, stderr io.Writer) (string, int, bool) {
	cf := newFlags(name, "[-c FILE | --config FILE | FILE]", summary, stdout, stderr)
	if code, ok := cf.parse(args, stdout); !ok {
		return "", code, false
	}
	path := *cf.config
	switch {
	case cf.NArg() > 1:
		fmt.Fprintf(stderr, "tlspilot %s: unexpected argument %q\n", name, cf.Arg(1))
		return "", 2, false
	case cf.NArg() == 1 && path != "" && path != cf.Arg(0):
		fmt.Fprintf(stderr, "tlspilot %s: two config files, %s and %s: name one\n", name, path, cf.Arg(0))
		return "", 2, false
	case cf.NArg() == 1:
		path = cf.Arg(0)
	}
	if path == "" {
		p, err := config.DefaultPath()
		if err != nil {
			fmt.Fprintf(stderr, "tlspilot %s: %v\n", name, err)
			return "", 1, false
		}
		path = p
	}
	return path, 0, true
}

func checkCmd(args []string, stdout, stderr io.Writer) int {
	path, code, ok := flags("check", "Validates the config file and prints what would be served and managed.", args, stdout, stderr)
	if !ok {
		return code
	}
	if config.IsAgentFile(path) {
		return checkAgent(path, stdout, stderr)
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	storage, err := checkServeStorage(cfg)
	if err = errors.Join(cfg.CheckTerms(), err, checkStorageKEK(cfg), checkChallengeDirAccess(cfg), checkLogDirs(cfg), checkSiteAccess(cfg), checkRunAsPrograms(cfg)); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, cfg.Summary())
	for _, w := range append(cfg.PublicCAWarnings(), cfg.ReloadWarnings()...) {
		fmt.Fprintln(stdout, "warning: "+w)
	}
	fmt.Fprintln(stdout, storage)
	fmt.Fprintf(stdout, "%s: OK\n", cfg.File)
	return 0
}
