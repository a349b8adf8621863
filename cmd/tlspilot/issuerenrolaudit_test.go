package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// auditJSON runs issuer audit --json with args and decodes its lines.
func auditJSON(t *testing.T, conf string, args ...string) []fleet.AuditRecord {
	t.Helper()
	out, _ := mustRun(t, append([]string{"issuer", "audit", "--config", conf, "--json"}, args...)...)
	var recs []fleet.AuditRecord
	for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r fleet.AuditRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// tokenExpiry is the expiry issuer enroll printed on stderr.
func tokenExpiry(t *testing.T, errOut string) string {
	t.Helper()
	m := regexp.MustCompile(`usable once until (\S+Z);`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("issuer enroll stderr without the expiry:\n%s", errOut)
	}
	return m[1]
}

// TestIssuerEnrolAudit: with a directory storage, end to end with the
// built binary: issuer enroll audits the policy and its token, the
// issuer daemon the client certificate it issues when agent enroll
// redeems the token, revoke-agent the revocation, and enroll again the
// re-admission; issuer audit prints them, issuer agents counts none of
// them as an obtained certificate.
func TestIssuerEnrolAudit(t *testing.T) {
	e, addr := issuerEnv(t)
	mustRun(t, "init", "--config", e.conf)
	caPEM, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	write(t, filepath.Join(e.dir, "fleet-ca.pem"), caPEM)
	startIssuer(t, e.conf, addr)
	tok, errOut := mustRun(t, "issuer", "enroll", "--config", e.conf, "db1", "--names", "db1.example.com,*.db1.example.com", "--ttl", "2h")
	if strings.Contains(errOut, "warning") || strings.Contains(errOut, "audit") {
		t.Errorf("issuer enroll stderr:\n%s", errOut)
	}
	expiry := tokenExpiry(t, errOut)
	agentConf := filepath.Join(e.dir, "agent.toml")
	write(t, agentConf, fmt.Sprintf("issuer = \"https://%s\"\nissuer_ca = %q\nstorage = %q\n", addr, filepath.Join(e.dir, "fleet-ca.pem"), filepath.Join(e.dir, "agent")))
	mustRun(t, "agent", "enroll", "--config", agentConf, "--token", strings.TrimSpace(tok))
	out, errOut := mustRun(t, "issuer", "revoke-agent", "--config", e.conf, "db1")
	revokedAt := strings.TrimPrefix(strings.TrimSpace(out), "agent db1: revoked at ")
	if errOut != "" {
		t.Errorf("revoke-agent stderr:\n%s", errOut)
	}
	_, errOut = mustRun(t, "issuer", "enroll", "--config", e.conf, "db1", "--names", "db1.example.com")
	again := tokenExpiry(t, errOut)

	recs := auditJSON(t, e.conf, "--host", "db1")
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(recs), recs)
	}
	both := "db1.example.com,*.db1.example.com"
	if r := recs[0]; r.Decision != fleet.AuditPolicy || strings.Join(r.Names, ",") != both ||
		r.Reason != "enrolment token usable until "+expiry+"; new agent" {
		t.Errorf("policy record: %+v", r)
	}
	r := recs[1]
	b, _ := pem.Decode([]byte(r.Chain))
	if b == nil {
		t.Fatalf("enrolled record without a certificate: %+v", r)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil || r.Decision != fleet.AuditEnrolled || strings.Join(r.Names, ",") != both || c.Subject.CommonName != "db1" ||
		r.Serial != c.SerialNumber.Text(16) || !r.NotAfter.Equal(c.NotAfter) || !r.NotBefore.Equal(c.NotBefore) ||
		r.KeyHash != fleet.KeyHash(c.RawSubjectPublicKeyInfo) {
		t.Errorf("enrolled record: %+v (%v)", r, err)
	}
	if r := recs[2]; r.Decision != fleet.AuditAgentRevoked || strings.Join(r.Names, ",") != both ||
		r.Reason != "its 1 client certificate(s) and the enrolment tokens made until now are refused" {
		t.Errorf("revocation record: %+v", r)
	}
	if r := recs[3]; r.Decision != fleet.AuditPolicy || strings.Join(r.Names, ",") != "db1.example.com" ||
		r.Reason != "enrolment token usable until "+again+"; re-admits the agent revoked at "+revokedAt+" once used; names were "+both {
		t.Errorf("second policy record: %+v", r)
	}

	lines := auditLines(t, e.conf, 4)
	for i, want := range []string{
		`^\S+Z +db1 +policy +db1.example.com,\*.db1.example.com +- +- +enrolment token usable until ` + expiry + `; new agent$`,
		`^\S+Z +db1 +enrolled +db1.example.com,\*.db1.example.com +` + recs[1].Serial + ` +` + recs[1].NotAfter.Format(time.RFC3339) + ` +-$`,
		`^\S+Z +db1 +agent-revoked +db1.example.com,\*.db1.example.com +- +- +its 1 client certificate`,
		`^\S+Z +db1 +policy +db1.example.com +- +- +enrolment token usable until \S+Z; re-admits`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d %q, want %s", i, lines[i], want)
		}
	}
	out, _ = mustRun(t, "issuer", "agents", "--config", e.conf)
	if !regexp.MustCompile(`(?m)^db1 .* 0 +- +-$`).MatchString(out) {
		t.Errorf("agents, want no certificate obtained:\n%s", out)
	}
}

// auditV1Table is the audit table as tlspilot made it at schema version
// 1, with its grants to fleet_issuer (AuditSchemaSQL then).
const auditV1Table = `CREATE TABLE tlspilot_fleet_audit (
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
REVOKE ALL ON tlspilot_fleet_audit FROM PUBLIC;
GRANT SELECT, INSERT ON tlspilot_fleet_audit TO fleet_issuer;
GRANT USAGE ON SEQUENCE tlspilot_fleet_audit_id_seq TO fleet_issuer;
`

// auditTableExists reports whether url's database has the audit table.
func auditTableExists(t *testing.T, url string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(t.Context(), `SELECT to_regclass('tlspilot_fleet_audit') IS NOT NULL`).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestIssuerEnrolAuditPostgres: with a PostgreSQL storage, enroll and
// revoke-agent do their job and warn on stderr while the audit table
// does not exist (and do not create it), and while it is of version 1
// and an administrator's (the append refused, logged); issuer audit
// --schema --upgrade prints the SQL that, run by the superuser, lets
// them audit without a warning.
func TestIssuerEnrolAuditPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	pgAdmin(t, admin, `CREATE ROLE fleet_issuer LOGIN; GRANT CREATE ON SCHEMA public TO fleet_issuer`)
	issuerURL := strings.Replace(admin, "postgres://tlspilot@", "postgres://fleet_issuer@", 1)
	e := newEnv(t)
	conf, _ := pgConfig(t, e, issuerURL, fmt.Sprintf("issuer_listen = %q\nissuer_names = [\"127.0.0.1\"]\n", freeAddr(t)))
	mustRun(t, "init", "--config", conf)

	tok, errOut := mustRun(t, "issuer", "enroll", "--config", conf, "db1", "--names", "db1.example.com")
	if len(strings.TrimSpace(tok)) != 43 || !strings.Contains(errOut, "tlspilot issuer enroll: warning: not audited: ") ||
		!strings.Contains(errOut, "no audit table tlspilot_fleet_audit") {
		t.Errorf("enroll without the table: stdout %q, stderr:\n%s", tok, errOut)
	}
	out, errOut := mustRun(t, "issuer", "revoke-agent", "--config", conf, "db1")
	if !strings.HasPrefix(out, "agent db1: revoked at ") || !strings.Contains(errOut, "tlspilot issuer revoke-agent: warning: not audited: ") {
		t.Errorf("revoke-agent without the table: stdout %q, stderr:\n%s", out, errOut)
	}
	if auditTableExists(t, admin) {
		t.Error("enroll or revoke-agent created the audit table")
	}

	pgAdmin(t, admin, auditV1Table)
	tok, errOut = mustRun(t, "issuer", "enroll", "--config", conf, "db2", "--names", "db2.example.com")
	if len(strings.TrimSpace(tok)) != 43 || strings.Count(errOut, "level=WARN") != 1 ||
		!strings.Contains(errOut, `msg="audit trail: table of an older schema version, not the issuer's database role's to upgrade`) ||
		!strings.Contains(errOut, "tlspilot issuer audit --schema --upgrade") ||
		!strings.Contains(errOut, `msg="audit trail: append failed" host=db2 decision=policy`) {
		t.Errorf("enroll with a version-1 table: stdout %q, stderr:\n%s", tok, errOut)
	}

	sql, _ := mustRun(t, "issuer", "audit", "--schema", "--upgrade", "--config", conf)
	if !strings.Contains(sql, `not as "fleet_issuer"`) || !strings.Contains(sql, "ALTER TABLE tlspilot_fleet_audit ADD CONSTRAINT") {
		t.Fatalf("--schema --upgrade:\n%s", sql)
	}
	pgAdmin(t, admin, sql)
	_, errOut = mustRun(t, "issuer", "enroll", "--config", conf, "db3", "--names", "db3.example.com")
	if strings.Contains(errOut, "warning") || strings.Contains(errOut, "level=") {
		t.Errorf("enroll after the upgrade, stderr:\n%s", errOut)
	}
	if _, errOut = mustRun(t, "issuer", "revoke-agent", "--config", conf, "db3"); errOut != "" {
		t.Errorf("revoke-agent after the upgrade, stderr:\n%s", errOut)
	}
	lines := auditLines(t, conf, 2)
	if !regexp.MustCompile(`^\S+Z +db3 +policy +db3.example.com +- +- +enrolment token usable until \S+Z; new agent$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^\S+Z +db3 +agent-revoked +db3.example.com +- +- +its 0 client certificate`).MatchString(lines[1]) {
		t.Errorf("audit after the upgrade:\n%s", strings.Join(lines, "\n"))
	}
	if code, _, errOut := runCLI(t, "issuer", "audit", "--upgrade", "--config", conf); code != 2 || !strings.Contains(errOut, "--upgrade goes with --schema") {
		t.Errorf("--upgrade without --schema: exit %d, %s", code, errOut)
	}
}
