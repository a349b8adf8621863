package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// auditV1SQL is the audit table as tlspilot made it at schema version 1
// (AuditSchemaSQL before the agents' decisions): its CHECK on decision
// is inline, named by PostgreSQL.
const auditV1SQL = `CREATE TABLE tlspilot_fleet_audit (
    id         bigserial PRIMARY KEY,
    time       timestamptz NOT NULL,
    host       text NOT NULL,
    names      text[] NOT NULL,
    key_hash   text,
    decision   text NOT NULL CHECK (decision IN ('accepted', 'refused', 'issued', 'failed')),
    reason     text,
    order_url  text,
    serial     text,
    not_before timestamptz,
    not_after  timestamptz,
    chain      text
);
CREATE INDEX tlspilot_fleet_audit_time ON tlspilot_fleet_audit (time);
CREATE INDEX tlspilot_fleet_audit_host_time ON tlspilot_fleet_audit (host, time);
COMMENT ON TABLE tlspilot_fleet_audit IS 'tlspilot fleet audit trail, schema version 1; rows are only appended';
`

// auditV1Grants are version 1's grants to fleet_issuer.
const auditV1Grants = `REVOKE ALL ON tlspilot_fleet_audit FROM PUBLIC;
GRANT SELECT, INSERT ON tlspilot_fleet_audit TO fleet_issuer;
GRANT USAGE ON SEQUENCE tlspilot_fleet_audit_id_seq TO fleet_issuer;
`

// enrolledRecord is an AuditEnrolled record, which a version-1 table
// refuses.
func enrolledRecord() AuditRecord {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return AuditRecord{Time: now, Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "dd44", Decision: AuditEnrolled,
		Serial: "03ef", NotBefore: now, NotAfter: now.Add(7 * 24 * time.Hour), Chain: "-----BEGIN CERTIFICATE-----\nMIIB3\n-----END CERTIFICATE-----\n"}
}

// wantCheckViolation checks that err is PostgreSQL's refusal of a row
// by the CHECK on decision.
func wantCheckViolation(t *testing.T, what string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" || pe.ConstraintName != auditDecisionCheck {
		t.Errorf("%s: %v, want the check violation (23514) of %s", what, err, auditDecisionCheck)
	}
}

// decisionChecks returns the names of the CHECK constraints of the table
// and its comment.
func decisionChecks(t *testing.T, url string) (names []string, comment string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT conname FROM pg_constraint
		WHERE conrelid = 'tlspilot_fleet_audit'::regclass AND contype = 'c' ORDER BY conname`)
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err == nil {
		err = conn.QueryRow(t.Context(), `SELECT obj_description('tlspilot_fleet_audit'::regclass, 'pg_class')`).Scan(&comment)
	}
	if err != nil {
		t.Fatal(err)
	}
	return names, comment
}

// TestPostgresAuditorUpgrade: a version-1 table the role owns, holding a
// row, is upgraded when issuers open it (three at once, upgrading it
// once): its CHECK on decision, whatever its name, is replaced, its
// comment says version 2, the row stays, and it takes AuditEnrolled.
func TestPostgresAuditorUpgrade(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	if err := pgExec(t, admin, `CREATE ROLE fleet_owner LOGIN; GRANT CREATE ON SCHEMA public TO fleet_owner`); err != nil {
		t.Fatal(err)
	}
	owner := asRole(t, admin, "fleet_owner")
	if err := pgExec(t, owner, auditV1SQL+`
		ALTER TABLE tlspilot_fleet_audit RENAME CONSTRAINT tlspilot_fleet_audit_decision_check TO decision_v1;
		INSERT INTO tlspilot_fleet_audit (time, host, names, decision) VALUES (now(), 'web1', '{web1.example.com}', 'accepted')`); err != nil {
		t.Fatal(err)
	}
	err := pgExec(t, owner, `INSERT INTO tlspilot_fleet_audit (time, host, names, decision) VALUES (now(), 'db1', '{}', 'enrolled')`)
	if err == nil {
		t.Fatal("the version-1 table took an enrolled row")
	}

	log, logged := logBuffer()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner, Logger: log})
			if err != nil {
				t.Error(err)
				return
			}
			a.Close()
		})
	}
	wg.Wait()
	if n := strings.Count(logged.String(), `msg="audit trail: table upgraded" table=tlspilot_fleet_audit from=1 version=2`); n != 1 ||
		strings.Contains(logged.String(), "older schema version") || strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("want one upgrade, no warning of an older version nor error:\n%s", logged)
	}
	names, comment := decisionChecks(t, owner)
	if len(names) != 1 || names[0] != auditDecisionCheck || !strings.Contains(comment, "schema version 2;") {
		t.Errorf("after the upgrade: checks %q, comment %q", names, comment)
	}

	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Append(ctx, enrolledRecord()); err != nil {
		t.Errorf("append enrolled after the upgrade: %v", err)
	}
	got, err := a.Query(ctx, AuditQuery{})
	if err != nil || len(got) != 2 || got[0].Host != "web1" || got[1].Decision != AuditEnrolled || got[1].Serial != "03ef" {
		t.Errorf("records after the upgrade: %v %+v", err, got)
	}
	err = pgExec(t, owner, `INSERT INTO tlspilot_fleet_audit (time, host, names, decision) VALUES (now(), 'db1', '{}', 'approved')`)
	wantCheckViolation(t, "an unknown decision after the upgrade", err)
}

// TestPostgresAuditorOldTableNotOwned: a version-1 table an
// administrator made, with version 1's grants to the issuer's role: the
// issuer opening it warns once, naming the fix, and still appends and
// reads the decisions of version 1, while AuditEnrolled fails the CHECK.
// Once a superuser has run AuditUpgradeSQL, the same auditor appends it,
// the role still has only its grants, and opening warns no more.
func TestPostgresAuditorOldTableNotOwned(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	if err := pgExec(t, admin, `CREATE ROLE fleet_issuer LOGIN`); err != nil {
		t.Fatal(err)
	}
	if err := pgExec(t, admin, auditV1SQL+auditV1Grants); err != nil {
		t.Fatal(err)
	}
	issuer := asRole(t, admin, "fleet_issuer")

	log, logged := logBuffer()
	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: issuer, Create: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], `msg="audit trail: table of an older schema version, not the issuer's database role's to upgrade`) ||
		!strings.Contains(lines[0], "version=1 want=2 role=fleet_issuer") ||
		!strings.Contains(lines[0], `fix="an administrator runs what tlspilot issuer audit --schema --upgrade prints`) {
		t.Errorf("want one warning naming the fix:\n%s", logged)
	}
	testAuditor(t, a)
	wantCheckViolation(t, "append enrolled to the version-1 table", a.Append(ctx, enrolledRecord()))

	if err := pgExec(t, admin, AuditUpgradeSQL("fleet_issuer")); err != nil {
		t.Fatalf("AuditUpgradeSQL: %v\n%s", err, AuditUpgradeSQL("fleet_issuer"))
	}
	if err := a.Append(ctx, enrolledRecord()); err != nil {
		t.Errorf("append enrolled after the administrator's upgrade: %v", err)
	}
	if got, err := a.Query(ctx, AuditQuery{Decision: AuditEnrolled}); err != nil || len(got) != 1 {
		t.Errorf("enrolled records: %v %+v", err, got)
	}
	g, err := a.Grants(ctx)
	if err != nil || len(g.Rewrite()) > 0 || len(g.Lacks()) > 0 {
		t.Errorf("grants after the upgrade: %+v (%v)", g, err)
	}
	names, comment := decisionChecks(t, admin)
	if len(names) != 1 || names[0] != auditDecisionCheck || !strings.Contains(comment, "schema version 2;") {
		t.Errorf("after the upgrade: checks %q, comment %q", names, comment)
	}
	if err := pgExec(t, admin, AuditUpgradeSQL("fleet_issuer")); err != nil {
		t.Errorf("AuditUpgradeSQL run again: %v", err)
	}

	log, logged = logBuffer()
	b, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: issuer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if logged.Len() > 0 {
		t.Errorf("warnings after the upgrade:\n%s", logged)
	}
}
