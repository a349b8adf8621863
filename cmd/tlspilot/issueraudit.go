package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/oneline"
)

const auditSummary = `Prints the issuer's audit trail, oldest first: every certificate request
of an agent (accepted or refused, and why) and its outcome (issued, with
the ACME order, serial and validity; or failed, and why); every policy
set and enrolment token made (policy), client certificate issued
(enrolled, client-renewed) and agent revoked (agent-revoked). A table by
default (the issued chains left out); with --json one JSON object per
line, the chain included.

With a PostgreSQL storage the trail is the table tlspilot_fleet_audit,
which should be append-only for the issuer's database role: --schema
prints the SQL an administrator runs to create it so, and --schema
--upgrade the SQL that upgrades a table made by an older tlspilot
(docs/fleet.md, "Audit trail"). With a directory storage it is one file
per record under data/fleet/audit/.`

// issuerAuditFlags are the flags of issuer audit.
type issuerAuditFlags struct {
	since   days
	host    *string
	json    *bool
	schema  *bool
	upgrade *bool
	role    *string
}

func issuerAuditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newFlags("issuer audit", "--config FILE [--since 30d] [--host HOST] [--json]\n       tlspilot issuer audit --schema [--upgrade] [--role ROLE | --config FILE]", auditSummary, stdout, stderr)
	var f issuerAuditFlags
	cf.Var(&f.since, "since", "only the records of this last while: a duration \"72h\" or days \"30d\" (default: all)")
	f.host = cf.String("host", "", "only the records of this agent")
	f.json = cf.Bool("json", false, "print one JSON object per record and line, with the issued chain")
	f.schema = cf.Bool("schema", false, "print the SQL that creates the audit table, append-only for the issuer's database role, and exit")
	f.upgrade = cf.Bool("upgrade", false, "with --schema: print instead the SQL that upgrades a table of an older schema version, for its owner or a superuser to run")
	f.role = cf.String("role", "", "with --schema: the issuer's database role (default: the user the config's storage connects as)")
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	if cf.NArg() != 0 {
		fmt.Fprintf(stderr, "tlspilot issuer audit: want no arguments, got %d (%s)\n", cf.NArg(), cf.Arg(0))
		return 2
	}
	if *f.upgrade && !*f.schema {
		fmt.Fprintln(stderr, "tlspilot issuer audit: --upgrade goes with --schema")
		return 2
	}
	if *f.schema {
		return auditSchemaCmd(cf, *f.role, *f.upgrade, stdout)
	}
	recs, err := queryAudit(ctx, cf, f)
	if errors.Is(err, fleet.ErrNoAuditTable) {
		fmt.Fprintf(stderr, "tlspilot issuer audit: nothing audited yet: %v\n", err)
		err = nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot issuer audit: %v\n", err)
		return 1
	}
	if *f.json {
		enc := json.NewEncoder(stdout)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				fmt.Fprintf(stderr, "tlspilot issuer audit: %v\n", err)
				return 1
			}
		}
		return 0
	}
	printAudit(stdout, recs)
	return 0
}

// queryAudit opens the issuer's audit trail and reads the records f
// selects.
func queryAudit(ctx context.Context, cf *commandFlags, f issuerAuditFlags) ([]fleet.AuditRecord, error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, err
	}
	is, err := openIssuerStore(cfg)
	if err != nil {
		return nil, err
	}
	defer is.close()
	trail, err := openAuditTrail(ctx, is, false, nil)
	if err != nil {
		return nil, err
	}
	defer trail.Close()
	q := fleet.AuditQuery{Host: strings.ToLower(*f.host), OmitChain: !*f.json}
	if f.since > 0 {
		q.Since = time.Now().Add(-time.Duration(f.since))
	}
	return trail.Query(ctx, q)
}

// auditSchemaCmd prints the SQL that creates the audit table for role,
// or that upgrades it, role by default the user of the config's
// database storage.
func auditSchemaCmd(cf *commandFlags, role string, upgrade bool, stdout io.Writer) int {
	if role == "" {
		var err error
		if role, err = storageRole(cf); err != nil {
			fmt.Fprintf(cf.stderr, "tlspilot issuer audit --schema: %v\n", err)
			return 1
		}
	}
	if upgrade {
		fmt.Fprint(stdout, fleet.AuditUpgradeSQL(role))
		return 0
	}
	fmt.Fprint(stdout, fleet.AuditSchemaSQL(role))
	return 0
}

// storageRole returns the database user the storage of the config
// connects as (the URL's, else PGUSER, else the system user).
func storageRole(cf *commandFlags) (string, error) {
	cfg, err := cf.load()
	if err != nil {
		return "", err
	}
	if !cfg.StorageIsDatabase() {
		return "", cfg.Errorf("storage", "a directory: the audit trail is kept in it, with no table to create (--schema is for a postgres:// storage; --role names the role without a config)")
	}
	pc, err := pgx.ParseConfig(cfg.Storage)
	if err != nil {
		return "", cfg.Errorf("storage", "%w", err)
	}
	return pc.User, nil
}

// printAudit prints one line per record. The fields are passed through
// oneline.Escape: a refused request records the names of the agent's CSR as
// sent, and a CSR's DNS name may hold line breaks, tabs and escape
// sequences, which must neither forge a line of the table nor reach the
// terminal.
func printAudit(w io.Writer, recs []fleet.AuditRecord) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tHOST\tDECISION\tNAMES\tSERIAL\tNOT-AFTER\tREASON")
	for _, r := range recs {
		reason := strings.Join(strings.Fields(r.Reason), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stampOrDash(r.Time), oneline.Escape(r.Host), oneline.Escape(r.Decision),
			orDash(oneline.Escape(strings.Join(r.Names, ","))), orDash(oneline.Escape(r.Serial)), stampOrDash(r.NotAfter), orDash(oneline.Escape(reason)))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d record(s)\n", len(recs))
}

// agentCerts is what the audit trail says of one agent's certificates.
type agentCerts struct {
	count        int
	lastSerial   string
	lastNotAfter time.Time
}

// issuedCerts reads from the audit trail the certificates each agent
// obtained.
func issuedCerts(ctx context.Context, is *issuerStore) (map[string]agentCerts, error) {
	trail, err := openAuditTrail(ctx, is, false, nil)
	if errors.Is(err, fleet.ErrNoAuditTable) {
		return map[string]agentCerts{}, nil // nothing audited yet
	}
	if err != nil {
		return nil, err
	}
	defer trail.Close()
	recs, err := trail.Query(ctx, fleet.AuditQuery{Decision: fleet.AuditIssued, OmitChain: true})
	if err != nil {
		return nil, err
	}
	out := make(map[string]agentCerts)
	for _, r := range recs { // oldest first: the last one wins
		c := out[r.Host]
		c.count++
		c.lastSerial, c.lastNotAfter = r.Serial, r.NotAfter
		out[r.Host] = c
	}
	return out, nil
}
