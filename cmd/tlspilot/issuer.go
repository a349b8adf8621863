package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/fleetca"
)

const issuerUsage = `Usage: tlspilot issuer --config FILE             run the issuer (its API on issuer_listen)
       tlspilot issuer COMMAND --config FILE ...

The fleet issuer: one host holds the ACME account and the DNS credentials
and issues certificates for its agents (docs/fleet.md). Its config has
issuer_listen and issuer_names; tlspilot init makes its fleet CA. Its API
answers GET /healthz without a client certificate: 200 while it can read
its storage, 503 while it cannot.

Commands:
  ca --config FILE                                  print the fleet CA certificate (PEM) that agents trust
  enroll --config FILE HOST --names N,N [--ttl 24h] set HOST's names and print a one-time enrolment token
  agents --config FILE                              list the agents: names, enrolled, last seen, client certificate, revoked, certificates obtained
  revoke-agent --config FILE HOST                   cut HOST off at once
  audit --config FILE [--since 30d] [--host H]      print the audit trail (also --json; --schema [--upgrade] prints the SQL of its table)
`

// issuerCmd dispatches the issuer's subcommands.
func issuerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, issuerUsage)
		return 2
	}
	switch args[0] {
	case "ca":
		return issuerCACmd(ctx, args[1:], stdout, stderr)
	case "enroll":
		return issuerEnrollCmd(ctx, args[1:], stdout, stderr)
	case "agents":
		return issuerAgentsCmd(ctx, args[1:], stdout, stderr)
	case "revoke-agent":
		return issuerRevokeCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return issuerAuditCmd(ctx, args[1:], stdout, stderr)
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, issuerUsage)
		return 0
	}
	if strings.HasPrefix(args[0], "-") {
		return issuerServeCmd(ctx, args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "tlspilot issuer: unknown command %q\n\n%s", args[0], issuerUsage)
	return 2
}

// issuerArgs parses a subcommand's flags and wants positional arguments
// exactly (their names, for messages), then opens the issuer's storage.
// ok is false when the command should end with code.
func issuerArgs(cf *commandFlags, args []string, want []string, stdout io.Writer) (is *issuerStore, code int, ok bool) {
	if code, ok := cf.parse(args, stdout); !ok {
		return nil, code, false
	}
	if cf.NArg() != len(want) {
		fmt.Fprintf(cf.stderr, "tlspilot %s: want %d argument(s) (%s), got %d\n", cf.Name(), len(want), strings.Join(want, " "), cf.NArg())
		return nil, 2, false
	}
	cfg, err := cf.load()
	if err == nil {
		is, err = openIssuerStore(cfg)
	}
	if err != nil {
		fmt.Fprintf(cf.stderr, "tlspilot %s: %v\n", cf.Name(), err)
		return nil, 1, false
	}
	return is, 0, true
}

func issuerCACmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer ca", "--config FILE", "Prints the fleet CA certificate (PEM): agents trust it alone for the issuer (issuer_ca).", stdout, stderr)
	is, code, ok := issuerArgs(cf, args, nil, stdout)
	if !ok {
		return code
	}
	defer is.close()
	opts, err := is.fleetOptions()
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer ca: %v\n", err)
		return 1
	}
	ca, err := fleetca.Open(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer ca: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(ca.PEM())
	return 0
}

const enrollSummary = `Sets the names HOST may obtain certificates for (its policy: names and
"*." wildcards; it applies at once) and prints a one-time enrolment token
on stdout, alone, to give to HOST's administrator:

  tlspilot agent enroll --config AGENT.toml --token TOKEN

The token is 256 random bits, shown this once: the issuer keeps only its
SHA-256 hash, with HOST, the names and the expiry. It enrols HOST once
and expires after --ttl. Enrolling a revoked HOST again re-admits it
once its new token is used. The change is audited (decision "policy" in
tlspilot issuer audit).`

func issuerEnrollCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer enroll", "--config FILE HOST --names NAME[,NAME...] [--ttl 24h]", enrollSummary, stdout, stderr)
	names := cf.String("names", "", "the names HOST may obtain, comma-separated, such as \"db1.example.com,*.db1.example.com\"")
	ttl := days(fleet.DefaultTokenTTL)
	cf.Var(&ttl, "ttl", fmt.Sprintf("how long the token may be used (a duration \"24h\" or days \"7d\", at most %v)", fleet.MaxTokenTTL))
	is, code, ok := issuerArgs(cf, args, []string{"HOST"}, stdout)
	if !ok {
		return code
	}
	defer is.close()
	e, err := enroll(ctx, is, cf.Arg(0), *names, time.Duration(ttl), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer enroll: %v\n", err)
		return 1
	}
	if e.WasRevoked {
		fmt.Fprintf(stderr, "%s was revoked: this token admits it again\n", e.Agent.Host)
	}
	fmt.Fprintf(stderr, "enrolment token for %s (names %s), usable once until %s; on %[1]s run:\n  tlspilot agent enroll --config AGENT.toml --token TOKEN\n",
		e.Agent.Host, strings.Join(e.Agent.Names, ", "), e.Expires.UTC().Format(time.RFC3339))
	fmt.Fprintln(stdout, e.Token)
	return 0
}

// enroll makes host's enrolment from the --names list, audited.
func enroll(ctx context.Context, is *issuerStore, host, names string, ttl time.Duration, stderr io.Writer) (*fleet.Enrollment, error) {
	var list []string
	for n := range strings.SplitSeq(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			list = append(list, n)
		}
	}
	r, release, err := is.auditedRegistry(ctx, "issuer enroll", stderr)
	if err != nil {
		return nil, err
	}
	defer release()
	return r.Enroll(ctx, host, list, ttl)
}

func issuerAgentsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer agents", "--config FILE", "Lists the agents: the names each may obtain, when it was enrolled and last seen, until when its client certificate is valid, whether it is revoked, and from the audit trail how many certificates it obtained and the last one's serial and expiry.", stdout, stderr)
	is, code, ok := issuerArgs(cf, args, nil, stdout)
	if !ok {
		return code
	}
	defer is.close()
	r, err := is.registry()
	var agents []*fleet.Agent
	if err == nil {
		agents, err = r.Agents(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer agents: %v\n", err)
		return 1
	}
	certs, err := issuedCerts(ctx, is)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer agents: certificates obtained unknown: %v\n", err)
	}
	printAgents(stdout, agents, certs)
	return 0
}

// printAgents prints one line per agent, with the certificates it
// obtained (nil: unknown).
func printAgents(w io.Writer, agents []*fleet.Agent, certs map[string]agentCerts) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tNAMES\tENROLLED\tLAST SEEN\tCLIENT CERT UNTIL\tREVOKED\tCERTS\tLAST SERIAL\tLAST CERT UNTIL")
	for _, a := range agents {
		state := "enrolled"
		switch {
		case !a.Revoked.IsZero():
			state = "revoked"
		case a.Enrolled.IsZero():
			state = "pending"
		}
		var until time.Time
		for _, c := range a.ClientCerts {
			if c.NotAfter.After(until) {
				until = c.NotAfter
			}
		}
		c, count := certs[a.Host], "?"
		if certs != nil {
			count = strconv.Itoa(c.count)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Host, state, strings.Join(a.Names, ","),
			stampOrDash(a.Enrolled), stampOrDash(a.LastSeen), stampOrDash(until), stampOrDash(a.Revoked),
			count, orDash(c.lastSerial), stampOrDash(c.lastNotAfter))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d agent(s)\n", len(agents))
}

// stampOrDash formats t in UTC to the second, or "-" when zero.
func stampOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func issuerRevokeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer revoke-agent", "--config FILE HOST", "Cuts HOST off at once: its client certificates are refused from now on, and its enrolment tokens not yet used too. The revocation is audited (decision \"agent-revoked\" in tlspilot issuer audit).", stdout, stderr)
	is, code, ok := issuerArgs(cf, args, []string{"HOST"}, stdout)
	if !ok {
		return code
	}
	defer is.close()
	r, release, err := is.auditedRegistry(ctx, "issuer revoke-agent", stderr)
	var a *fleet.Agent
	if err == nil {
		defer release()
		a, err = r.Revoke(ctx, cf.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer revoke-agent: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "agent %s: revoked at %s\n", a.Host, a.Revoked.UTC().Format(time.RFC3339))
	return 0
}
