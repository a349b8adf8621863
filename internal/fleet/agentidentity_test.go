package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// identityState returns the status of the agent's client certificate in
// e's storage at now.
func (e *agentEnv) identityState(t *testing.T, issuer string, now time.Time) tlspilot.CertStatus {
	t.Helper()
	st, err := AgentStatus(context.Background(), e.st, issuer, nil, now, tlspilot.WarnWindow{})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// TestKeeperNewEnrolment: against the real issuer (Pebble, BIND,
// dns-01), a Keeper whose agent was revoked is refused and backs off;
// status shows the client certificate failing with the refusal. Once
// the agent is enrolled again (a new identity in the storage, as
// `tlspilot agent enroll` leaves it), the same Keeper, not restarted,
// presents the new certificate at its next pass, without waiting for
// the refusal's backoff, and obtains its certificate; status says valid.
func TestKeeperNewEnrolment(t *testing.T) {
	ctx := t.Context()
	eng := startEngine(t)
	is := startOrderingIssuer(t, eng.m, nil, nil, nil)
	e := newAgentEnv(t)
	if err := SaveIdentity(ctx, e.st, e.sealer, is.enrolFor(t, "web1", "web1.example.test")); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeeper(ctx, KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: is.url, Roots: is.roots,
		Certificates: []KeptCert{{Names: []string{"web1.example.test"}, KeyType: keys.ECDSAP256}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.reg.Revoke(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k.Pass(ctx, now, false)
	rec := record(t, k)
	if rec.Attempts != 1 || rec.RetryAt.Sub(now) < 30*time.Second || !strings.Contains(rec.LastError, "enrol again") {
		t.Fatalf("revoked: attempts %d, retry in %s, error %q", rec.Attempts, rec.RetryAt.Sub(now), rec.LastError)
	}
	if s := e.identityState(t, is.url, now); s.State != tlspilot.StateFailing || !strings.Contains(s.LastError, "refused this agent's client certificate") {
		t.Errorf("status of the refused identity: %s, %q", s.State, s.LastError)
	}

	if err := SaveIdentity(ctx, e.st, e.sealer, is.enrolFor(t, "web1", "web1.example.test")); err != nil {
		t.Fatal(err)
	}
	k.Pass(ctx, now.Add(time.Second), false)
	if rec = record(t, k); rec.Attempts != 0 || (rec.Pending == nil && rec.Fullchain == "") {
		t.Fatalf("after a new enrolment, not asked again at once: attempts %d, error %q", rec.Attempts, rec.LastError)
	}
	for _, r := range k.Once(ctx, 2*time.Minute) {
		if !r.OK {
			t.Errorf("once after the new enrolment: %v: %s", r.Names, r.Problem)
		}
	}
	if s := e.identityState(t, is.url, time.Now()); s.State != tlspilot.StateValid || s.LastError != "" {
		t.Errorf("status of the new identity: %s, %q", s.State, s.LastError)
	}
}

// TestKeeperIdentityRefusedStatus: a client certificate of another
// fleet CA is refused in the handshake; the refusal is stored, so that
// status shows the identity failing (WARNING) with it as its last
// error, rather than valid, until an exchange with an accepted
// certificate succeeds (the refusal record is then removed).
func TestKeeperIdentityRefusedStatus(t *testing.T) {
	ctx := t.Context()
	is := startIssuer(t)
	e := newAgentEnv(t)
	if err := SaveIdentity(ctx, e.st, e.sealer, startIssuer(t).enrol(t, "db1")); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeeper(ctx, KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: is.url, Roots: is.roots,
		Certificates: []KeptCert{{Names: []string{"db1.example.com"}, KeyType: keys.ECDSAP256}}})
	if err != nil {
		t.Fatal(err)
	}
	res := k.Once(ctx, 0)
	if last := res[len(res)-1]; last.Names[0] != identityKey || !strings.Contains(last.Problem, "unknown certificate authority") {
		t.Errorf("once: %+v", res)
	}
	now := time.Now()
	s := e.identityState(t, is.url, now)
	if s.State != tlspilot.StateFailing || s.Attempts < 1 || !strings.Contains(s.LastError, "remote error: tls: unknown certificate authority") {
		t.Errorf("status of an identity from another fleet CA: %s, attempts %d, %q", s.State, s.Attempts, s.LastError)
	}
	if r := tlspilot.NewStatusReport(now, []tlspilot.CertStatus{s}, nil); r.ExitCode != tlspilot.ExitWarning {
		t.Errorf("status exit %d, want WARNING", r.ExitCode)
	}

	if err := SaveIdentity(ctx, e.st, e.sealer, is.enrol(t, "db1")); err != nil {
		t.Fatal(err)
	}
	// The refusal of the new certificate, stored as if an exchange
	// failed: the next exchange that succeeds removes it.
	k.reloadIdentity(ctx)
	k.noteExchange(ctx, now, ErrIdentityRefused)
	if s := e.identityState(t, is.url, now); s.State != tlspilot.StateFailing {
		t.Fatalf("a refusal of the new certificate: %s", s.State)
	}
	if res := k.Once(ctx, 0); len(res) != 1 {
		t.Errorf("once with the accepted identity: %+v", res)
	}
	if _, err := e.st.Load(ctx, identityRefusalKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refusal is still stored after an exchange succeeded: %v", err)
	}
	if s := e.identityState(t, is.url, time.Now()); s.State != tlspilot.StateValid || s.LastError != "" {
		t.Errorf("status after an exchange succeeded: %s, %q", s.State, s.LastError)
	}
}

// TestKeeperDeployConfigChanged: a deployment that failed (a reload
// command that fails) waits for its backoff when the configuration is
// the same, but a Keeper whose deploy configuration changed since (the
// operator fixed the reload command and restarted) deploys at once, and
// status no longer shows the old command's error.
func TestKeeperDeployConfigChanged(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	marker := filepath.Join(e.dir, "reloaded")
	keeper := func(config string, reload ...string) *Keeper {
		d, err := deploy.New(deploy.Options{Fullchain: filepath.Join(e.dir, "fullchain.pem"), Privkey: filepath.Join(e.dir, "privkey.pem"), Reload: reload})
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(f.srv.Certificate())
		k, err := NewKeeper(ctx, KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: f.srv.URL, Roots: roots,
			Certificates: []KeptCert{{Names: []string{"db1.example.com"}, KeyType: keys.ECDSAP256, Deployer: d, DeployConfig: config}}})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := keeper("reload false", "false")
	now := time.Now()
	rec := seed(t, k, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	k.Pass(ctx, now, false)
	if got := record(t, k).Deploy; got.Attempts != 1 || got.RetryAt.Sub(now) < 5*time.Second {
		t.Fatalf("after a failed reload: %+v", got)
	}
	keeper("reload false", "sh", "-c", "echo >> "+marker).Pass(ctx, now.Add(time.Second), false)
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the same deploy configuration retried before its backoff")
	}
	k = keeper("reload fixed", "sh", "-c", "echo >> "+marker)
	k.Pass(ctx, now.Add(time.Second), false)
	if b, _ := os.ReadFile(marker); string(b) != "\n" {
		t.Errorf("a changed deploy configuration did not deploy at once: reloads %q", b)
	}
	if got := record(t, k).Deploy; got.Attempts != 0 || got.LastError != "" || got.Serial != rec.Serial || got.Config != "reload fixed" {
		t.Errorf("after the changed configuration deployed: %+v", got)
	}
}
