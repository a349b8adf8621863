package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuditTable is the PostgreSQL table of the audit trail, in the schema
// the connection's search_path names first (that of pgstore's tables).
const AuditTable = "tlspilot_fleet_audit"

// auditSchemaVersion is the version of the table's layout this code
// reads and writes; the table's comment records the version it has.
// Version 1 allowed the decisions of certificate requests only; version
// 2 adds the agents' own (AuditPolicy, AuditEnrolled,
// AuditClientRenewed, AuditAgentRevoked) to the CHECK on decision.
const auditSchemaVersion = 2

// auditCreateLock is the pg_advisory_xact_lock key held while the table
// is created or upgraded: "tlsaudit" in ASCII (pgstore's migration key
// is "tlspilot").
const auditCreateLock int64 = 0x746c736175646974

// auditDecisionCheck is the name of the CHECK constraint on decision:
// the name PostgreSQL gave version 1's inline CHECK, which version 2
// gives explicitly.
const auditDecisionCheck = AuditTable + "_decision_check"

// ErrNoAuditTable is wrapped by the error of NewPostgresAuditor when the
// table does not exist and PostgresAuditOptions.Create is false.
var ErrNoAuditTable = errors.New("no audit table " + AuditTable)

// auditColumns are the columns Append writes and Query reads, in order.
const auditColumns = "time, host, names, key_hash, decision, reason, order_url, serial, not_before, not_after, chain"

// PostgresAuditOptions configures a PostgresAuditor.
type PostgresAuditOptions struct {
	// URL names the database, as pgstore.Options.URL does (postgres://
	// URL or keyword/value string, with libpq's environment variables
	// and passfile for the password): the issuer's storage.
	URL string
	// Create makes the table when it does not exist yet, owned by the
	// connecting role, which then may alter its rows: the issuer does
	// so at start (and warns). When false a missing table is an error
	// wrapping ErrNoAuditTable.
	Create bool
	// MaxConns bounds the connections; 0 means 2.
	MaxConns int32
	// Logger receives the warnings of New (a role that may change or
	// remove rows, or lacks a grant it needs; a table of an older schema
	// version the role cannot upgrade) and the note of an upgrade; nil
	// discards them.
	Logger *slog.Logger
}

// PostgresAuditor keeps the audit trail in the table AuditTable: one row
// per record, inserted and never updated. It is safe for concurrent use
// by several goroutines and issuer processes. Times are kept to the
// microsecond (PostgreSQL's timestamptz).
type PostgresAuditor struct {
	pool *pgxpool.Pool
}

// NewPostgresAuditor connects to opts.URL, creates the table if it is
// missing and opts.Create is set (under an advisory lock, so issuers
// starting together create it once), checks that its layout is one this
// code knows, and logs a warning when the connected role may change or
// remove rows (see AuditGrants). A table of an older schema version is
// upgraded when the connected role owns it (in one transaction, under
// the same lock); otherwise New logs a warning naming the fix (an
// administrator runs AuditUpgradeSQL) and goes on: until then, Append
// of a decision that version does not know fails. ctx bounds the
// connection and checks.
func NewPostgresAuditor(ctx context.Context, opts PostgresAuditOptions) (*PostgresAuditor, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("fleet: audit: %w", err)
	}
	cfg.MaxConns = 2
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: audit: %w", err)
	}
	a := &PostgresAuditor{pool: pool}
	if err := a.open(ctx, opts); err != nil {
		pool.Close()
		c := cfg.ConnConfig
		return nil, fmt.Errorf("fleet: audit: database %s on %s:%d as %s: %w", c.Database, c.Host, c.Port, c.User, err)
	}
	return a, nil
}

// open creates the table if asked to, checks its version and columns,
// and warns about the role's grants.
func (a *PostgresAuditor) open(ctx context.Context, opts PostgresAuditOptions) error {
	exists, err := a.tableExists(ctx)
	if err != nil {
		return err
	}
	created := false
	if !exists {
		if !opts.Create {
			return fmt.Errorf("%w (the issuer creates it at start; for an append-only trail an administrator creates it first: tlspilot issuer audit --schema)", ErrNoAuditTable)
		}
		if created, err = a.create(ctx); err != nil {
			return err
		}
	}
	v, err := a.checkLayout(ctx)
	if err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if v < auditSchemaVersion {
		a.upgrade(ctx, log, v)
	}
	if opts.Logger == nil {
		return nil
	}
	if created {
		log.Warn("audit trail: table created, owned by the issuer's database role", "table", AuditTable,
			"fix", "for an append-only trail an administrator creates it and grants SELECT, INSERT (tlspilot issuer audit --schema; docs/fleet.md)")
	}
	g, err := a.Grants(ctx)
	if err != nil {
		return err
	}
	if may := g.Rewrite(); len(may) > 0 {
		log.Warn("audit trail: not append-only for the issuer's database role", "table", AuditTable, "role", g.Role, "may", strings.Join(may, ", "),
			"fix", "tlspilot issuer audit --schema prints the grants (docs/fleet.md, Audit trail)")
	}
	if lacks := g.Lacks(); len(lacks) > 0 {
		log.Error("audit trail: the issuer's database role lacks grants it needs", "table", AuditTable, "role", g.Role, "lacks", strings.Join(lacks, ", "))
	}
	return nil
}

// tableExists reports whether the table is visible on the search_path.
func (a *PostgresAuditor) tableExists(ctx context.Context) (bool, error) {
	var exists bool
	if err := a.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, AuditTable).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for %s: %w", AuditTable, err)
	}
	return exists, nil
}

// create makes the table in one transaction under an advisory lock,
// unless another process made it first, and says whether it did.
func (a *PostgresAuditor) create(ctx context.Context) (bool, error) {
	created := false
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditCreateLock); err != nil {
			return err
		}
		// Read pg_class with this statement's snapshot: to_regclass may
		// answer from a cache not yet told of a table another process
		// just committed.
		var exists bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class
			WHERE relname = $1 AND relnamespace = current_schema()::regnamespace)`, AuditTable).Scan(&exists)
		if err != nil || exists {
			return err
		}
		for _, stmt := range auditCreateSQL() {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("create %s (or let an administrator create it: tlspilot issuer audit --schema): %w", AuditTable, err)
	}
	return created, nil
}

// checkLayout refuses a table of a newer schema version (its comment) or
// without the columns this code uses, and returns its version.
func (a *PostgresAuditor) checkLayout(ctx context.Context) (int, error) {
	v, err := auditVersion(ctx, a.pool)
	if err != nil {
		return 0, err
	}
	if v > auditSchemaVersion {
		return 0, fmt.Errorf("%s has schema version %d, newer than this tlspilot knows (%d): upgrade tlspilot", AuditTable, v, auditSchemaVersion)
	}
	rows, err := a.pool.Query(ctx, `SELECT id, `+auditColumns+` FROM `+AuditTable+` LIMIT 0`)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("check the columns of %s: %w", AuditTable, err)
	}
	return v, nil
}

// rowQuerier is what auditVersion reads with: the pool, or a
// transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// auditVersion reads the table's schema version from its comment; a
// table without one is of version 1, the first.
func auditVersion(ctx context.Context, q rowQuerier) (int, error) {
	var comment *string
	if err := q.QueryRow(ctx, `SELECT obj_description($1::regclass, 'pg_class')`, AuditTable).Scan(&comment); err != nil {
		return 0, fmt.Errorf("read the version of %s: %w", AuditTable, err)
	}
	if comment == nil {
		return 1, nil
	}
	_, v, ok := strings.Cut(*comment, "schema version ")
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
	if err != nil {
		return 1, nil
	}
	return n, nil
}

// upgrade brings a table of an older version (from) to this one when the
// connected role owns it, in one transaction under the creation lock,
// unless another process did first; otherwise, or when it fails, it logs
// why and the fix. Either way the table still takes the decisions it
// took.
func (a *PostgresAuditor) upgrade(ctx context.Context, log *slog.Logger, from int) {
	fix := "an administrator runs what tlspilot issuer audit --schema --upgrade prints (docs/fleet.md, Audit trail)"
	g, err := a.Grants(ctx)
	if err == nil && !g.OwnsTable && !g.Superuser {
		log.Warn("audit trail: table of an older schema version, not the issuer's database role's to upgrade: appends of enrolments, policies, client certificates and revocations fail until it is",
			"table", AuditTable, "version", from, "want", auditSchemaVersion, "role", g.Role, "fix", fix)
		return
	}
	upgraded := false
	if err == nil {
		err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditCreateLock); err != nil {
				return err
			}
			v, err := auditVersion(ctx, tx)
			if err != nil || v >= auditSchemaVersion {
				return err // upgraded by another process meanwhile
			}
			for _, stmt := range auditUpgradeSQL() {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			upgraded = true
			return nil
		})
	}
	if err != nil {
		log.Error("audit trail: upgrade of the table failed: appends of enrolments, policies, client certificates and revocations fail until it is done",
			"table", AuditTable, "version", from, "want", auditSchemaVersion, "error", err, "fix", fix)
		return
	}
	if upgraded {
		log.Info("audit trail: table upgraded", "table", AuditTable, "from", from, "version", auditSchemaVersion)
	}
}

// Close releases the connections. Calls after the first do nothing.
func (a *PostgresAuditor) Close() { a.pool.Close() }

// Append inserts r as a new row; a zero r.Time is the current time. It
// returns once the row is committed.
func (a *PostgresAuditor) Append(ctx context.Context, r AuditRecord) error {
	r, err := checkRecord(r)
	if err != nil {
		return err
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO `+AuditTable+` (`+auditColumns+`)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), $9, $10, NULLIF($11, ''))`,
		r.Time, r.Host, r.Names, r.KeyHash, r.Decision, r.Reason, r.OrderURL, r.Serial,
		nullTime(r.NotBefore), nullTime(r.NotAfter), r.Chain)
	if err != nil {
		return fmt.Errorf("fleet: audit: append: %w", err)
	}
	return nil
}

// Query returns the rows q selects, oldest first (ties in insertion
// order).
func (a *PostgresAuditor) Query(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	chain := "coalesce(chain, '')"
	if q.OmitChain {
		chain = "''"
	}
	sql := `SELECT time, host, names, coalesce(key_hash, ''), decision, coalesce(reason, ''),
		coalesce(order_url, ''), coalesce(serial, ''), not_before, not_after, ` + chain + `
		FROM ` + AuditTable
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !q.Since.IsZero() {
		add("time >= $%d", q.Since)
	}
	if q.Host != "" {
		add("host = $%d", q.Host)
	}
	if q.Decision != "" {
		add("decision = $%d", q.Decision)
	}
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := a.pool.Query(ctx, sql+" ORDER BY time, id", args...)
	if err != nil {
		return nil, fmt.Errorf("fleet: audit: query: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("fleet: audit: query: %w", err)
	}
	return out, nil
}

// scanRecord reads one row of Query.
func scanRecord(row pgx.CollectableRow) (AuditRecord, error) {
	var r AuditRecord
	var nb, na *time.Time
	err := row.Scan(&r.Time, &r.Host, &r.Names, &r.KeyHash, &r.Decision, &r.Reason,
		&r.OrderURL, &r.Serial, &nb, &na, &r.Chain)
	r.Time = r.Time.UTC()
	if nb != nil {
		r.NotBefore = nb.UTC()
	}
	if na != nil {
		r.NotAfter = na.UTC()
	}
	return r, err
}

// nullTime is t for a query, NULL when t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// AuditGrants is what the connected database role may do with the audit
// table, as PostgreSQL's privilege functions report it.
type AuditGrants struct {
	// Role is the role connected (current_user).
	Role string
	// Superuser: the role may do anything.
	Superuser bool
	// OwnsTable: the role (or one it is a member of) owns the table, so
	// it may grant itself anything, alter or drop it.
	OwnsTable bool
	// OwnsSchema: the role owns the table's schema, so it may drop the
	// table (on PostgreSQL 15 and later the database's owner owns
	// public).
	OwnsSchema bool
	// Update, Delete and Truncate are those privileges on the table.
	Update, Delete, Truncate bool
	// Insert and Select are those privileges on the table; Sequence is
	// USAGE on its id sequence. The issuer needs all three.
	Insert, Select, Sequence bool
}

// Grants reads what the connected role may do with the table.
func (a *PostgresAuditor) Grants(ctx context.Context) (AuditGrants, error) {
	var g AuditGrants
	err := a.pool.QueryRow(ctx, `SELECT current_user,
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
		pg_has_role(c.relowner, 'USAGE'), pg_has_role(n.nspowner, 'USAGE'),
		has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),
		has_table_privilege(c.oid, 'TRUNCATE'), has_table_privilege(c.oid, 'INSERT'),
		has_table_privilege(c.oid, 'SELECT'),
		coalesce(has_sequence_privilege(pg_get_serial_sequence($1, 'id'), 'USAGE'), false)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = $1::regclass`, AuditTable).Scan(&g.Role, &g.Superuser, &g.OwnsTable, &g.OwnsSchema,
		&g.Update, &g.Delete, &g.Truncate, &g.Insert, &g.Select, &g.Sequence)
	if err != nil {
		return g, fmt.Errorf("fleet: audit: read the grants on %s: %w", AuditTable, err)
	}
	return g, nil
}

// Rewrite lists what lets the role change or remove rows; it is empty
// when the trail is append-only for the role.
func (g AuditGrants) Rewrite() []string {
	var out []string
	for _, p := range []struct {
		has  bool
		what string
	}{
		{g.Superuser, "superuser"},
		{g.OwnsTable, "owner of the table"},
		{g.OwnsSchema, "owner of its schema (may drop it)"},
		{g.Update, "UPDATE"},
		{g.Delete, "DELETE"},
		{g.Truncate, "TRUNCATE"},
	} {
		if p.has {
			out = append(out, p.what)
		}
	}
	return out
}

// Lacks lists the grants the issuer needs that the role does not have.
func (g AuditGrants) Lacks() []string {
	var out []string
	if !g.Select {
		out = append(out, "SELECT")
	}
	if !g.Insert {
		out = append(out, "INSERT")
	}
	if !g.Sequence {
		out = append(out, "USAGE on sequence "+AuditTable+"_id_seq")
	}
	return out
}

var _ Auditor = (*PostgresAuditor)(nil)
