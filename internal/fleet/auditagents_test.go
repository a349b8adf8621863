package fleet

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// startAuditedIssuer serves on a loopback port, until the test ends, the
// API of a new fleet CA and registry over st, the registry and the
// server both auditing to a, as `tlspilot issuer` wires them.
func startAuditedIssuer(t *testing.T, st storage.Storage, a Auditor) *issuer {
	t.Helper()
	reg, err := New(Options{Storage: st, Auditor: a})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := fleetca.Create(context.Background(), fleetca.Options{Storage: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{CA: ca, Registry: reg, Names: []string{"127.0.0.1"}, Auditor: a})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &issuer{reg: reg, ca: ca, url: "https://" + l.Addr().String(), roots: ca.Pool()}
}

// wantClientCertRecord checks that r records c, the client certificate
// of an agent whose policy is names, with decision.
func wantClientCertRecord(t *testing.T, r AuditRecord, decision string, c *x509.Certificate, names []string) {
	t.Helper()
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	if r.Decision != decision || r.Host != c.Subject.CommonName || !slices.Equal(r.Names, names) ||
		r.Serial != c.SerialNumber.Text(16) || !r.NotBefore.Equal(c.NotBefore) || !r.NotAfter.Equal(c.NotAfter) ||
		r.KeyHash != KeyHash(c.RawSubjectPublicKeyInfo) || r.Chain != p || r.Reason != "" || r.OrderURL != "" {
		t.Errorf("%s record:\n%+v\nwant serial %s, validity %v to %v, key %s, names %q and the certificate as chain",
			decision, r, c.SerialNumber.Text(16), c.NotBefore, c.NotAfter, KeyHash(c.RawSubjectPublicKeyInfo), names)
	}
}

// testAgentEvents runs an agent's life against an issuer over st
// auditing to a: an administrator enrols it, it redeems its token,
// renews its client certificate, is revoked and enrolled again with
// fewer names; each step is one record of a, with its fields.
func testAgentEvents(t *testing.T, st storage.Storage, a Auditor) {
	ctx := context.Background()
	is := startAuditedIssuer(t, st, a)
	names := []string{"db1.example.com", "*.db1.example.com"}
	start := time.Now().Add(-time.Second)
	e, err := is.reg.Enroll(ctx, "db1", names, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := is.client(t, nil).Enroll(ctx, e.Token)
	if err != nil {
		t.Fatal(err)
	}
	next, err := is.client(t, id).RenewIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := is.reg.Revoke(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := is.reg.Enroll(ctx, "db1", names[:1], 0)
	if err != nil {
		t.Fatal(err)
	}

	recs, err := a.Query(ctx, AuditQuery{Host: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Decision)
		if r.Time.Before(start) || r.Time.After(time.Now()) {
			t.Errorf("%s record at %v, want since %v", r.Decision, r.Time, start)
		}
	}
	want := []string{AuditPolicy, AuditEnrolled, AuditClientRenewed, AuditAgentRevoked, AuditPolicy}
	if !slices.Equal(got, want) {
		t.Fatalf("decisions %q, want %q", got, want)
	}
	if r := recs[0]; !slices.Equal(r.Names, names) || r.Serial != "" || r.Chain != "" ||
		r.Reason != "enrolment token usable until "+e.Expires.UTC().Format(time.RFC3339)+"; new agent" {
		t.Errorf("first policy record: %+v", r)
	}
	wantClientCertRecord(t, recs[1], AuditEnrolled, id.Certificate, names)
	wantClientCertRecord(t, recs[2], AuditClientRenewed, next.Certificate, names)
	if r := recs[3]; !slices.Equal(r.Names, names) || r.Serial != "" ||
		r.Reason != "its 2 client certificate(s) and the enrolment tokens made until now are refused" {
		t.Errorf("revocation record: %+v", r)
	}
	wantReason := "enrolment token usable until " + again.Expires.UTC().Format(time.RFC3339) +
		"; re-admits the agent revoked at " + revoked.Revoked.UTC().Format(time.RFC3339) + " once used" +
		"; names were db1.example.com,*.db1.example.com"
	if r := recs[4]; !slices.Equal(r.Names, names[:1]) || r.Reason != wantReason {
		t.Errorf("second policy record: %+v\nwant reason %q", r, wantReason)
	}
	if issued, err := a.Query(ctx, AuditQuery{Decision: AuditIssued}); err != nil || len(issued) != 0 {
		t.Errorf("issued records: %v %+v, want none: no certificate was obtained", err, issued)
	}
}

// TestAuditAgentEvents: with a directory storage, the issuer audits an
// enrolment's policy and token, the client certificates it issues (first
// and renewed) and a revocation, each with its fields.
func TestAuditAgentEvents(t *testing.T) {
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	testAgentEvents(t, st, NewStorageAuditor(st))
}

// TestAuditAgentEventsPostgres: the same with a PostgreSQL storage and
// the audit table, created by the issuer's auditor.
func TestAuditAgentEventsPostgres(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	st, err := pgstore.New(ctx, pgstore.Options{URL: pg.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: pg.URL, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	testAgentEvents(t, st, a)
}

// TestRegistryAuditFailure: when the audit trail fails (a PostgreSQL
// auditor whose connections are closed), Enroll and Revoke still make
// their change, and log the failure.
func TestRegistryAuditFailure(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	a, err := NewPostgresAuditor(ctx, PostgresAuditOptions{URL: pg.URL, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	a.Close() // every append now fails
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	log, logged := logBuffer()
	reg, err := New(Options{Storage: st, Auditor: a, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Enroll(ctx, "db1", []string{"db1.example.com"}, 0); err != nil {
		t.Errorf("Enroll with a failing trail: %v", err)
	}
	if _, err := reg.Revoke(ctx, "db1"); err != nil {
		t.Errorf("Revoke with a failing trail: %v", err)
	}
	for _, d := range []string{AuditPolicy, AuditAgentRevoked} {
		if !strings.Contains(logged.String(), `msg="audit trail: append failed" host=db1 decision=`+d) {
			t.Errorf("no logged failure for %s:\n%s", d, logged)
		}
	}
}

// TestAuditRefusedEnrolment: an enrolment token used a second time (a
// leaked token, an agent set up twice), or one made before its host was
// revoked, is refused and audited as refused with the host and why; the
// trail held nothing of it before.
func TestAuditRefusedEnrolment(t *testing.T) {
	st, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := NewStorageAuditor(st)
	reg, err := New(Options{Storage: st, Auditor: a})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	e, err := reg.Enroll(ctx, "db1", []string{"db1.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Redeem(ctx, e.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Redeem(ctx, e.Token); err == nil {
		t.Fatal("a used token was accepted again")
	}
	e2, err := reg.Enroll(ctx, "db1", []string{"db1.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the revocation comes after the token
	if _, err := reg.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Redeem(ctx, e2.Token); err == nil {
		t.Fatal("a token made before the revocation was accepted")
	}
	recs, err := a.Query(ctx, AuditQuery{Decision: AuditRefused})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Host != "db1" || !strings.HasPrefix(recs[0].Reason, "enrolment: enrolment token already used") ||
		!strings.HasPrefix(recs[1].Reason, "enrolment: db1: agent revoked") {
		t.Errorf("refused records %+v; want the used token and the revoked host's token", recs)
	}
}
