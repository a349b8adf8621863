package fleet

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// pgExec runs sql on url (simple protocol: several statements at once)
// and returns the error.
func pgExec(t *testing.T, url, sql string) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), sql)
	return err
}

// asRole returns url (testenv's, for its superuser) for role instead.
func asRole(t *testing.T, url, role string) string {
	t.Helper()
	u, ok := strings.CutPrefix(url, "postgres://tlspilot@")
	if !ok {
		t.Fatalf("unexpected database URL %s", url)
	}
	return "postgres://" + role + "@" + u
}

// logBuffer is a logger writing text to a buffer, and the buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestPostgresAuditorGrants: with the table made by an administrator
// from AuditSchemaSQL, a role holding only its grants appends and
// queries (the Auditor contract), raises no warning, and its UPDATE,
// DELETE, TRUNCATE and DROP are refused with permission denied; the
// superuser, who may, is warned about.
func TestPostgresAuditorGrants(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	if err := pgExec(t, admin, `CREATE ROLE fleet_issuer LOGIN`); err != nil {
		t.Fatal(err)
	}
	if err := pgExec(t, admin, AuditSchemaSQL("fleet_issuer")); err != nil {
		t.Fatalf("AuditSchemaSQL: %v\n%s", err, AuditSchemaSQL("fleet_issuer"))
	}
	issuer := asRole(t, admin, "fleet_issuer")

	log, logged := logBuffer()
	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: issuer, Create: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if logged.Len() > 0 {
		t.Errorf("warnings for a role with only the documented grants:\n%s", logged)
	}
	g, err := a.Grants(ctx)
	if err != nil || g.Role != "fleet_issuer" || len(g.Rewrite()) > 0 || len(g.Lacks()) > 0 {
		t.Errorf("grants of fleet_issuer: %+v (%v); may rewrite %q, lacks %q", g, err, g.Rewrite(), g.Lacks())
	}
	testAuditor(t, a)

	for _, sql := range []string{
		`UPDATE ` + AuditTable + ` SET reason = 'nothing happened'`,
		`DELETE FROM ` + AuditTable,
		`TRUNCATE ` + AuditTable,
		`DROP TABLE ` + AuditTable,
		`ALTER TABLE ` + AuditTable + ` DROP COLUMN chain`,
		`SELECT setval('` + AuditTable + `_id_seq', 1)`,
	} {
		err := pgExec(t, issuer, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" { // insufficient_privilege
			t.Errorf("%s as fleet_issuer: %v, want permission denied (42501)", sql, err)
		}
	}
	if got, err := a.Query(ctx, AuditQuery{}); err != nil || len(got) != 7 {
		t.Errorf("after the refused changes: %d records (%v), want 7", len(got), err)
	}

	log, logged = logBuffer()
	b, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: admin, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.Contains(logged.String(), `msg="audit trail: not append-only for the issuer's database role"`) ||
		!strings.Contains(logged.String(), "may=\"superuser, owner of the table, owner of its schema (may drop it), UPDATE, DELETE, TRUNCATE\"") {
		t.Errorf("the superuser's warning:\n%s", logged)
	}
}

// TestPostgresAuditorCreate: without the table, issuers starting at once
// with Create make it once and warn that their role owns it; without
// Create a missing table is ErrNoAuditTable; a newer layout is refused.
func TestPostgresAuditorCreate(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	if err := pgExec(t, admin, `CREATE ROLE fleet_owner LOGIN; GRANT CREATE ON SCHEMA public TO fleet_owner`); err != nil {
		t.Fatal(err)
	}
	owner := asRole(t, admin, "fleet_owner")
	if _, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner}); !errors.Is(err, ErrNoAuditTable) || !strings.Contains(err.Error(), "tlspilot issuer audit --schema") {
		t.Errorf("a missing table without Create: %v", err)
	}

	log, logged := logBuffer()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner, Create: true, Logger: log})
			if err != nil {
				t.Error(err)
				return
			}
			a.Close()
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	created := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.Contains(l, "table created") })
	rewrite := slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
		return !strings.Contains(l, "not append-only") || !strings.Contains(l, `may="owner of the table, UPDATE, DELETE, TRUNCATE"`)
	})
	if len(created) != 1 || len(rewrite) != 4 {
		t.Errorf("want one 'table created' and four 'not append-only' (owner of the table) warnings:\n%s", logged)
	}

	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner})
	if err != nil {
		t.Fatal(err)
	}
	testAuditor(t, a)
	a.Close()

	if err := pgExec(t, owner, `COMMENT ON TABLE `+AuditTable+` IS 'tlspilot fleet audit trail, schema version 3; rows are only appended'`); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: owner}); err == nil || !strings.Contains(err.Error(), "schema version 3, newer") {
		t.Errorf("a newer table: %v", err)
	}
}
