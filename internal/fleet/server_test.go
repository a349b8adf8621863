package fleet

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// issuer is an issuer's API served on loopback for a test.
type issuer struct {
	reg   *Registry
	ca    *fleetca.CA
	url   string
	roots *x509.CertPool
}

// startIssuer serves the API of a new fleet CA and registry on a
// loopback port until the test ends.
func startIssuer(t *testing.T) *issuer {
	t.Helper()
	reg, st := newRegistry(t)
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := fleetca.Create(context.Background(), fleetca.Options{Storage: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{reg: reg, ca: ca}
	is.serve(t)
	return is
}

// client returns a client of the issuer presenting id (none if nil).
func (is *issuer) client(t *testing.T, id *Identity) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Issuer: is.url, Roots: is.roots, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol makes a token for host and enrols a new agent with it.
func (is *issuer) enrol(t *testing.T, host string) *Identity {
	t.Helper()
	e, err := is.reg.Enroll(context.Background(), host, []string{host + ".example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := is.client(t, nil).Enroll(context.Background(), e.Token)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wantRefused checks that err is an answer of the issuer with status
// and message.
func wantRefused(t *testing.T, what string, err error, status, msg string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "HTTP "+status) || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %v, want HTTP %s saying %q", what, err, status, msg)
	}
}

// TestEnrollOverTLS: over real TLS 1.3 on loopback, an agent enrols with
// its token and a CSR (its key stays with it, sealed in its storage) and
// is then known by its client certificate; a replayed, expired or
// made-up token is refused, and so is an agent call without a client
// certificate.
func TestEnrollOverTLS(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	e, err := is.reg.Enroll(ctx, "db1", []string{"db1.example.com", "*.db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	anonymous := is.client(t, nil)
	id, err := anonymous.Enroll(ctx, e.Token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Host != "db1" || id.Certificate.Subject.CommonName != "db1" || id.Certificate.ExtKeyUsage[0] != 2 /* client auth */ {
		t.Errorf("identity %s %s %v", id.Host, id.Certificate.Subject, id.Certificate.ExtKeyUsage)
	}
	got, err := is.client(t, id).Agent(ctx)
	if err != nil || got.Host != "db1" || len(got.Names) != 2 {
		t.Fatalf("Agent: %+v, %v", got, err)
	}
	if a, _ := is.reg.Agent(ctx, "db1"); a.LastSeen.IsZero() || len(a.ClientCerts) != 1 {
		t.Errorf("record after a call: %+v", a)
	}

	_, err = anonymous.Enroll(ctx, e.Token)
	wantRefused(t, "replayed token", err, "403", "enrolment token already used")
	short, _ := is.reg.Enroll(ctx, "db2", []string{"db2.example.com"}, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	_, err = anonymous.Enroll(ctx, short.Token)
	wantRefused(t, "expired token", err, "403", "enrolment token expired")
	_, err = anonymous.Enroll(ctx, "made-up")
	wantRefused(t, "made-up token", err, "403", "unknown enrolment token")
	_, err = anonymous.Agent(ctx)
	wantRefused(t, "no client certificate", err, "401", "a client certificate from the fleet CA is required")

	st, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkIdentityStored(t, st, id)
}

// checkIdentityStored saves id, checks the record holds no clear key,
// and loads it back.
func checkIdentityStored(t *testing.T, st storage.Storage, id *Identity) {
	t.Helper()
	ctx := context.Background()
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(ctx, st, sealer, id); err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Load(ctx, identityKey)
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Error("the identity record holds the key in clear")
	}
	back, err := LoadIdentity(ctx, st, sealer)
	if err != nil || back.Host != id.Host || !back.Certificate.Equal(id.Certificate) {
		t.Errorf("LoadIdentity: %v", err)
	}
}

// TestRevokedAgentRefused: once revoked, an agent is refused at its next
// request on a connection already open, and in the handshake of a new
// one; a certificate of another fleet CA fails the handshake.
func TestRevokedAgentRefused(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	id := is.enrol(t, "db1")
	open := is.client(t, id)
	if _, err := open.Agent(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := is.reg.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	_, err := open.Agent(ctx)
	wantRefused(t, "revoked agent, connection open", err, "403", "agent revoked")
	_, err = is.client(t, id).Agent(ctx)
	if err == nil || !strings.Contains(err.Error(), "remote error: tls: ") || !errors.Is(err, ErrIdentityRefused) ||
		!strings.Contains(err.Error(), "enrol again") {
		t.Errorf("revoked agent, new connection: %v, want the handshake refused, saying to enrol again", err)
	}
	t.Logf("revoked agent, new connection: %v", err)

	stranger := startIssuer(t).enrol(t, "db1")
	_, err = is.client(t, stranger).Agent(ctx)
	if err == nil || !strings.Contains(err.Error(), "remote error: tls: ") {
		t.Errorf("certificate of another fleet CA: %v, want the handshake refused", err)
	}
	t.Logf("certificate of another fleet CA: %v", err)
}

// TestEnrollBadCSR: a CSR with a weak key is refused before the token is
// used up, so the agent can try again with a good one.
func TestEnrollBadCSR(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	e, _ := is.reg.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weak)
	if err != nil {
		t.Fatal(err)
	}
	var resp EnrollResponse
	err = is.client(t, nil).do(ctx, "POST", PathEnroll, EnrollRequest{Token: e.Token, CSR: der}, &resp)
	wantRefused(t, "RSA 1024 CSR", err, "400", "weak or unsupported key")
	if _, err := is.client(t, nil).Enroll(ctx, e.Token); err != nil {
		t.Errorf("the token after a refused CSR: %v", err)
	}
}

// TestRenewClientCert: an agent renews its client certificate with the
// one it has, for a new key; both are accepted until the old one
// expires; once the agent is revoked, renewal is refused.
func TestRenewClientCert(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	id := is.enrol(t, "db1")
	if d := time.Until(id.RenewAt()); d < 4*24*time.Hour || d > 5*24*time.Hour {
		t.Errorf("renew in %v, want when a third of 7 days remains", d)
	}
	next, err := is.client(t, id).RenewIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Host != "db1" || next.Certificate.SerialNumber.Cmp(id.Certificate.SerialNumber) == 0 || next.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(id.Key.Public()) {
		t.Errorf("renewed identity: host %s, same serial or key", next.Host)
	}
	for name, who := range map[string]*Identity{"old": id, "new": next} {
		if _, err := is.client(t, who).Agent(ctx); err != nil {
			t.Errorf("%s certificate: %v", name, err)
		}
	}
	if _, err := is.reg.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	open := is.client(t, next)
	_, err = open.RenewIdentity(ctx)
	if err == nil || !strings.Contains(err.Error(), "remote error: tls: ") {
		t.Errorf("renewal by a revoked agent: %v, want the handshake refused", err)
	}
}
