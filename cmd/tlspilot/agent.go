package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

const agentUsage = `Usage: tlspilot agent --config AGENT.toml [--once]
       tlspilot agent COMMAND --config AGENT.toml ...

A fleet agent: it keeps its keys, sends CSRs to the issuer over mutual
TLS and deploys what it gets back (docs/fleet.md). Without a command it
keeps the config's certificates: as a daemon, or one pass with --once
(tlspilot agent --help tells more).

Commands:
  enroll --config AGENT.toml --token TOKEN   make this agent's key and get its client certificate with a token from tlspilot issuer enroll
`

// agentCmd dispatches the agent's subcommands.
func agentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, agentUsage)
		return 2
	}
	if strings.HasPrefix(args[0], "-") {
		return agentRunCmd(ctx, args, stdout, stderr) // agentrun.go; --help too
	}
	switch args[0] {
	case "enroll":
		return agentEnrollCmd(ctx, args[1:], stdout, stderr)
	case "help":
		fmt.Fprint(stdout, agentUsage)
		return 0
	}
	fmt.Fprintf(stderr, "tlspilot agent: unknown command %q\n\n%s", args[0], agentUsage)
	return 2
}

const agentEnrollSummary = `Makes this agent's key (kept in its storage, sealed under STORAGE/kek),
sends a CSR for it with the one-time token that tlspilot issuer enroll
printed, stores the client certificate the issuer returns, and checks it
with a first authenticated call. Run again with a new token, it replaces
the agent's identity (after a revocation, say).`

func agentEnrollCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("agent enroll", "--config AGENT.toml --token TOKEN | --token-file FILE", agentEnrollSummary, stdout, stderr)
	token := cf.String("token", "", "the enrolment token tlspilot issuer enroll printed")
	tokenFile := cf.String("token-file", "", "a file holding the token instead (a token on the command line shows in ps)")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	switch {
	case cf.NArg() > 0:
		fmt.Fprintf(stderr, "tlspilot agent enroll: unexpected argument %q\n", cf.Arg(0))
		return 2
	case *cf.config == "" || (*token == "") == (*tokenFile == ""):
		fmt.Fprintln(stderr, "tlspilot agent enroll: --config AGENT.toml and one of --token TOKEN or --token-file FILE are required")
		return 2
	}
	tok, err := readToken(*token, *tokenFile)
	if err == nil {
		err = agentEnroll(ctx, *cf.config, tok, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot agent enroll: %v\n", err)
		return 1
	}
	return 0
}

// readToken returns the token given, or the one in file.
func readToken(token, file string) (string, error) {
	if file == "" {
		return token, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// agentEnroll enrols the agent of the config file at path.
func agentEnroll(ctx context.Context, path, token string, stdout io.Writer) error {
	cfg, err := config.LoadAgent(path)
	if err != nil {
		return err
	}
	roots, err := fleetRoots(cfg)
	if err != nil {
		return err
	}
	st, sealer, err := openAgentStore(cfg)
	if err != nil {
		return err
	}
	c, err := fleet.NewClient(fleet.ClientOptions{Issuer: cfg.Issuer, Roots: roots})
	if err != nil {
		return err
	}
	id, err := c.Enroll(ctx, token)
	if err != nil {
		return err
	}
	if err := fleet.SaveIdentity(ctx, st, sealer, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled with %s as %s: client certificate valid until %s\n", cfg.Issuer, id.Host, id.Certificate.NotAfter.UTC().Format(time.RFC3339))
	return checkIdentity(ctx, cfg, roots, id, stdout)
}

// checkIdentity makes a first call with the new identity and prints the
// policy the issuer holds for this agent.
func checkIdentity(ctx context.Context, cfg *config.Agent, roots *x509.CertPool, id *fleet.Identity, stdout io.Writer) error {
	c, err := fleet.NewClient(fleet.ClientOptions{Issuer: cfg.Issuer, Roots: roots, Identity: id})
	if err != nil {
		return err
	}
	a, err := c.Agent(ctx)
	if err != nil {
		return fmt.Errorf("the first call with the new client certificate: %w", err)
	}
	fmt.Fprintf(stdout, "the issuer knows %s; it may obtain: %s\n", a.Host, strings.Join(a.Names, ", "))
	return nil
}

// fleetRoots reads issuer_ca: the only root trusted for the issuer.
func fleetRoots(cfg *config.Agent) (*x509.CertPool, error) {
	b, err := os.ReadFile(cfg.IssuerCA)
	if err != nil {
		return nil, cfg.Errorf("issuer_ca", "%w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, cfg.Errorf("issuer_ca", "%s holds no PEM certificate", cfg.IssuerCA)
	}
	return pool, nil
}

// openAgentStore opens the agent's storage directory and its
// key-encryption key (STORAGE/kek, created on first use).
func openAgentStore(cfg *config.Agent) (storage.Storage, *keys.Sealer, error) {
	st, err := fsstore.New(fsstore.Options{Dir: cfg.Storage})
	if err != nil {
		return nil, nil, cfg.Errorf("storage", "%w", err)
	}
	kek := filepath.Join(cfg.Storage, "kek")
	sealer, err := keys.LoadOrCreateSealer(kek)
	if errors.Is(err, fs.ErrPermission) {
		return nil, nil, cfg.Errorf("storage", "key-encryption key %s: %w", kek, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open key-encryption key: %w", err)
	}
	return st, sealer, nil
}
