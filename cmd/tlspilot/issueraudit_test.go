package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// auditRecords appends to a the records the issuer's endpoint would
// have for db1 (two certificates, 40 days and an hour ago) and web1 (a
// refusal 3 days ago), and returns db1's last certificate's expiry.
func auditRecords(t *testing.T, a fleet.Auditor) time.Time {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	lastNotAfter := now.Add(89 * day)
	for _, r := range []fleet.AuditRecord{
		{Time: now.Add(-40 * day), Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}, KeyHash: "aa11", Decision: fleet.AuditIssued,
			OrderURL: "https://ca.example/order/1", Serial: "01ab", NotBefore: now.Add(-40 * day), NotAfter: now.Add(50 * day), Chain: "-----BEGIN CERTIFICATE-----\nMIIB1\n-----END CERTIFICATE-----\n"},
		{Time: now.Add(-3 * day), Host: "web1", Names: []string{"evil.example.com"}, KeyHash: "bb22", Decision: fleet.AuditRefused,
			Reason: "policy: evil.example.com is not among\nthe names web1 may obtain"},
		{Time: now.Add(-time.Hour), Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}, KeyHash: "cc33", Decision: fleet.AuditAccepted},
		{Time: now.Add(-time.Hour + time.Minute), Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}, KeyHash: "cc33", Decision: fleet.AuditIssued,
			OrderURL: "https://ca.example/order/2", Serial: "02cd", NotBefore: now.Add(-time.Hour), NotAfter: lastNotAfter, Chain: "-----BEGIN CERTIFICATE-----\nMIIB2\n-----END CERTIFICATE-----\n"},
	} {
		if err := a.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return lastNotAfter
}

// auditLines runs issuer audit with args and returns its table's lines
// between the header and the count, checking both.
func auditLines(t *testing.T, conf string, want int, args ...string) []string {
	t.Helper()
	out, _ := mustRun(t, append([]string{"issuer", "audit", "--config", conf}, args...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !regexp.MustCompile(`^TIME +HOST +DECISION +NAMES +SERIAL +NOT-AFTER +REASON$`).MatchString(lines[0]) ||
		lines[len(lines)-1] != fmt.Sprintf("%d record(s)", want) || len(lines) != want+2 || strings.Contains(out, "CERTIFICATE") {
		t.Fatalf("issuer audit %v: want %d records, no chain:\n%s", args, want, out)
	}
	return lines[1 : len(lines)-1]
}

// TestIssuerAudit: with a directory storage, issuer audit prints the
// records appended to the trail (the enrolments' policies, then those of
// certificate requests) as a table (no chain), selected by --since (days
// or a duration) and --host, or as JSON lines with the chain; issuer
// agents counts each agent's certificates (issued records only) and
// shows the last one; --schema wants a database storage or --role.
func TestIssuerAudit(t *testing.T) {
	e, _ := issuerEnv(t)
	mustRun(t, "init", "--config", e.conf)
	mustRun(t, "issuer", "enroll", "--config", e.conf, "db1", "--names", "db1.example.com,*.db1.example.com")
	mustRun(t, "issuer", "enroll", "--config", e.conf, "web1", "--names", "web1.example.com")
	auditLines(t, e.conf, 2)

	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(e.dir, "storage")})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := auditRecords(t, fleet.NewStorageAuditor(st))

	lines := auditLines(t, e.conf, 6)
	for i, want := range []string{
		`^\S+Z +db1 +issued +db1.example.com,\*.db1.example.com +01ab +\S+Z +-$`,
		`^\S+Z +web1 +refused +evil.example.com +- +- +policy: evil.example.com is not among the names web1 may obtain$`,
		`^\S+Z +db1 +accepted +db1.example.com,\*.db1.example.com +- +- +-$`,
		`^\S+Z +db1 +issued +db1.example.com,\*.db1.example.com +02cd +` + notAfter.Format(time.RFC3339) + ` +-$`,
		`^\S+Z +db1 +policy +db1.example.com,\*.db1.example.com +- +- +enrolment token usable until \S+Z; new agent$`,
		`^\S+Z +web1 +policy +web1.example.com +- +- +enrolment token usable until \S+Z; new agent$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d %q, want %s", i, lines[i], want)
		}
	}
	auditLines(t, e.conf, 5, "--since", "30d")
	auditLines(t, e.conf, 4, "--since", "2h")
	if got := auditLines(t, e.conf, 2, "--host", "web1"); !strings.Contains(got[0], "refused") || !strings.Contains(got[1], "policy") {
		t.Errorf("--host web1: %q", got)
	}

	out, _ := mustRun(t, "issuer", "audit", "--config", e.conf, "--json", "--host", "db1", "--since", "30d")
	jl := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var recs []fleet.AuditRecord
	for _, l := range jl {
		var r fleet.AuditRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 || recs[2].Decision != fleet.AuditPolicy || recs[1].Serial != "02cd" || !strings.Contains(recs[1].Chain, "MIIB2") || !recs[1].NotAfter.Equal(notAfter) ||
		recs[1].OrderURL != "https://ca.example/order/2" || recs[0].Decision != fleet.AuditAccepted {
		t.Errorf("--json --host db1 --since 30d:\n%s", out)
	}

	out, _ = mustRun(t, "issuer", "agents", "--config", e.conf)
	if !regexp.MustCompile(`(?m)^HOST .* REVOKED +CERTS +LAST SERIAL +LAST CERT UNTIL$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^db1 .* - +2 +02cd +`+notAfter.Format(time.RFC3339)+`$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^web1 .* - +0 +- +-$`).MatchString(out) {
		t.Errorf("agents:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--since", "3x"}, 2, "want a number of days"},
		{[]string{"db1"}, 2, "want no arguments"},
		{[]string{"--schema"}, 1, "--schema is for a postgres:// storage"},
	} {
		code, _, errOut := runBinary(t, append([]string{"issuer", "audit", "--config", e.conf}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("issuer audit %v: exit %d, %s; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	out, _ = mustRun(t, "issuer", "audit", "--schema", "--role", "tls issuer")
	if !strings.Contains(out, `GRANT SELECT, INSERT ON tlspilot_fleet_audit TO "tls issuer";`) {
		t.Errorf("--schema --role:\n%s", out)
	}
	if code, out, _ := runCLI(t, "issuer", "audit", "--help"); code != 0 || !strings.Contains(out, "Usage: tlspilot issuer audit --config FILE") {
		t.Errorf("issuer audit --help: exit %d, %s", code, out)
	}
}

// TestIssuerAuditPostgres: with a PostgreSQL storage, before the table
// exists audit says nothing was audited yet, and the issuer creates it
// at start and warns that its role may change rows. Once an
// administrator has made it from what issuer audit --schema prints (the
// role taken from the config), the issuer starts without a warning, and
// issuer audit and issuer agents read what that role appended.
func TestIssuerAuditPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	admin := pg.NewDatabase(t)
	pgAdmin(t, admin, `CREATE ROLE fleet_issuer LOGIN; GRANT CREATE ON SCHEMA public TO fleet_issuer`)
	issuerURL := strings.Replace(admin, "postgres://tlspilot@", "postgres://fleet_issuer@", 1)
	e := newEnv(t)
	conf, _ := pgConfig(t, e, issuerURL, fmt.Sprintf("issuer_listen = %q\nissuer_names = [\"127.0.0.1\"]\n", freeAddr(t)))
	mustRun(t, "init", "--config", conf)

	out, errOut := mustRun(t, "issuer", "audit", "--config", conf)
	if out != "TIME  HOST  DECISION  NAMES  SERIAL  NOT-AFTER  REASON\n0 record(s)\n" || !strings.Contains(errOut, "nothing audited yet") || !strings.Contains(errOut, "--schema") {
		t.Errorf("audit before the table exists: %q %q", out, errOut)
	}
	log := issuerStartLog(t, conf)
	if !strings.Contains(log, "audit trail: table created") ||
		!strings.Contains(log, `msg="audit trail: not append-only for the issuer's database role" component=audit table=tlspilot_fleet_audit role=fleet_issuer may="owner of the table, UPDATE, DELETE, TRUNCATE"`) {
		t.Errorf("the issuer's start without the table:\n%s", log)
	}

	schema, _ := mustRun(t, "issuer", "audit", "--schema", "--config", conf)
	if !strings.Contains(schema, `GRANT SELECT, INSERT ON tlspilot_fleet_audit TO "fleet_issuer";`) {
		t.Fatalf("--schema:\n%s", schema)
	}
	pgAdmin(t, admin, "DROP TABLE tlspilot_fleet_audit")
	pgAdmin(t, admin, schema)
	if log := issuerStartLog(t, conf); strings.Contains(log, "audit trail") {
		t.Errorf("the issuer's start with the administrator's table:\n%s", log)
	}
	auditLines(t, conf, 0)

	a, err := fleet.NewPostgresAuditor(context.Background(), fleet.PostgresAuditOptions{URL: issuerURL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	notAfter := auditRecords(t, a)
	auditLines(t, conf, 3, "--since", "30d")
	out, _ = mustRun(t, "issuer", "audit", "--config", conf, "--json", "--host", "db1")
	if strings.Count(out, "\n") != 3 || !strings.Contains(out, `"chain":"-----BEGIN CERTIFICATE-----\nMIIB2`) {
		t.Errorf("--json --host db1:\n%s", out)
	}
	mustRun(t, "issuer", "enroll", "--config", conf, "db1", "--names", "db1.example.com,*.db1.example.com")
	out, _ = mustRun(t, "issuer", "agents", "--config", conf)
	if !regexp.MustCompile(`(?m)^db1 .* 2 +02cd +` + notAfter.Format(time.RFC3339) + `$`).MatchString(out) {
		t.Errorf("agents:\n%s", out)
	}
}

// pgAdmin runs sql on url as testenv's superuser.
func pgAdmin(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// issuerStartLog runs the issuer daemon until it listens, stops it, and
// returns what it printed until then (the audit trail is opened before).
func issuerStartLog(t *testing.T, conf string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(buildBinary(t), "issuer", "--config", conf)
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "issuer API listening") {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	// Its exit status is not this test's concern: stopped this early it
	// may report the start-up work it was interrupted in.
	_, _ = io.Copy(io.Discard, r)
	_ = cmd.Wait()
	return out.String()
}
