package fleet

// The SQL of the audit table: its creation, its upgrade from an older
// schema version, and the grants that keep it append-only for the
// issuer's role.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AuditSchemaSQL returns the SQL an administrator runs to create the
// audit table so that role (the issuer's database role) may only append
// to it and read it: the table, its indexes, and the grants SELECT and
// INSERT on it and USAGE on its id sequence, nothing else. Run by a role
// other than role (the database's owner, or a superuser), the table is
// not role's to alter or drop. The statements run in one transaction and
// fail if the table exists.
func AuditSchemaSQL(role string) string {
	r := pgx.Identifier{role}.Sanitize()
	var b strings.Builder
	b.WriteString("-- tlspilot fleet audit trail (docs/fleet.md, \"Audit trail\").\n")
	b.WriteString("-- Run as an administrator role, not as " + r + ", in the issuer's database.\n")
	b.WriteString("BEGIN;\n")
	for _, s := range auditCreateSQL() {
		b.WriteString(s + ";\n")
	}
	fmt.Fprintf(&b, "REVOKE ALL ON %s FROM PUBLIC;\n", AuditTable)
	fmt.Fprintf(&b, "GRANT SELECT, INSERT ON %s TO %s;\n", AuditTable, r)
	fmt.Fprintf(&b, "GRANT USAGE ON SEQUENCE %s_id_seq TO %s;\n", AuditTable, r)
	b.WriteString("COMMIT;\n")
	return b.String()
}

// AuditUpgradeSQL returns the SQL an administrator runs to upgrade an
// audit table of an older schema version, which role (the issuer's
// database role) does not own, to this one: it replaces the CHECK on
// decision (found by its column in pg_constraint, whatever its name)
// with one allowing every decision, and records the version in the
// table's comment. Grants and rows are untouched. The statements run in
// one transaction, as the table's owner or a superuser; run again, they
// change nothing.
func AuditUpgradeSQL(role string) string {
	r := pgx.Identifier{role}.Sanitize()
	var b strings.Builder
	fmt.Fprintf(&b, "-- tlspilot fleet audit trail: upgrade to schema version %d (docs/fleet.md, \"Audit trail\").\n", auditSchemaVersion)
	b.WriteString("-- Run as the table's owner or a superuser, not as " + r + ", in the issuer's database.\n")
	b.WriteString("BEGIN;\n")
	for _, s := range auditUpgradeSQL() {
		b.WriteString(s + ";\n")
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// auditDecisionSQL is the CHECK on decision.
func auditDecisionSQL() string {
	return "CHECK (decision IN ('" + strings.Join(auditDecisions(), "', '") + "'))"
}

// auditCommentSQL records the schema version in the table's comment.
func auditCommentSQL() string {
	return `COMMENT ON TABLE ` + AuditTable + ` IS 'tlspilot fleet audit trail, schema version ` + strconv.Itoa(auditSchemaVersion) + `; rows are only appended'`
}

// auditUpgradeSQL returns the statements that upgrade a table of an
// older version: drop every CHECK on decision alone (version 1's is
// named by PostgreSQL, so it is looked up), add this version's.
func auditUpgradeSQL() []string {
	return []string{
		`DO $$
DECLARE c name;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
        WHERE conrelid = '` + AuditTable + `'::regclass AND contype = 'c'
        AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
            WHERE attrelid = '` + AuditTable + `'::regclass AND attname = 'decision')]
    LOOP
        EXECUTE format('ALTER TABLE ` + AuditTable + ` DROP CONSTRAINT %I', c);
    END LOOP;
END $$`,
		`ALTER TABLE ` + AuditTable + ` ADD CONSTRAINT ` + auditDecisionCheck + `
    ` + auditDecisionSQL(),
		auditCommentSQL(),
	}
}

// auditCreateSQL returns the statements that create the table.
func auditCreateSQL() []string {
	return []string{
		`CREATE TABLE ` + AuditTable + ` (
    id         bigserial PRIMARY KEY,
    time       timestamptz NOT NULL,
    host       text NOT NULL,
    names      text[] NOT NULL,
    key_hash   text,
    decision   text NOT NULL CONSTRAINT ` + auditDecisionCheck + `
               ` + auditDecisionSQL() + `,
    reason     text,
    order_url  text,
    serial     text,
    not_before timestamptz,
    not_after  timestamptz,
    chain      text
)`,
		`CREATE INDEX ` + AuditTable + `_time ON ` + AuditTable + ` (time)`,
		`CREATE INDEX ` + AuditTable + `_host_time ON ` + AuditTable + ` (host, time)`,
		auditCommentSQL(),
	}
}
