package tlspilot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestRevokedTakenUp: a certificate revoked by another process (tlspilot
// revoke) whose own replacement failed is, for the Manager serving it,
// revoked: status CRITICAL at once, a replacement ordered and retried
// until it comes, with no restart and no forced renewal.
func TestRevokedTakenUp(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.StoragePoll = 200 * time.Millisecond
	m := startManager(t, p, cfg)
	const name = "revoked.example.test"
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	first := m.Status()[0]

	// The revoking process: its replacement order is refused.
	refuse := refuseOrders(p)
	cli := cfg
	cli.OnEvent, cli.Logger = nil, testLogger(t)
	other, err := New(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ManageCerts(context.Background(), Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	// Revoked, but not replaced: told apart from a failed revocation, and
	// so again when it is run a second time (the CA answers that the
	// certificate is revoked already).
	for range 2 {
		var re *ReplacementError
		if err := other.Revoke(context.Background(), name, ReasonKeyCompromise); !errors.As(err, &re) {
			t.Fatalf("Revoke with the replacement order refused: %v; want a ReplacementError", err)
		}
	}

	// The serving Manager takes the revocation up and keeps trying.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := m.Status()[0]
		rep := m.Report(context.Background())
		if st.State == StateRevoked && st.Attempts > 0 && rep.ExitCode == ExitCritical {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the revocation: state %q, %d attempts, status %s; want revoked, attempts, CRITICAL", st.State, st.Attempts, rep.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	refuse.Store(false)
	deadline = time.Now().Add(30 * time.Second)
	for {
		st := m.Status()[0]
		if st.State == StateValid && st.Serial != first.Serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement after the CA took orders again: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevokeNeverObtained: revoking a configured name that has no
// certificate yet says so and orders nothing; before, it failed on the
// missing file and then ordered a replacement (which, with the CA down,
// also pushed the daemon's next attempt back).
func TestRevokeNeverObtained(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const name = "never.example.test"
	if err := m.ManageCerts(context.Background(), Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	before := p.Requests()
	err = m.Revoke(context.Background(), name, ReasonUnspecified)
	if err == nil || !strings.Contains(err.Error(), "no certificate has been obtained for this name yet") {
		t.Fatalf("Revoke = %v, want it to say no certificate was obtained yet", err)
	}
	if n := p.Requests() - before; n != 0 {
		t.Errorf("%d requests to the CA, want none", n)
	}
}

// TestRevokeStoredUnderOldKeyType: a name whose configured certificate
// is not obtained yet, while a certificate for that very name is stored
// and served (the config's key type changed from ECDSA to RSA before
// serve restarted), has the stored one revoked, as a name no longer
// managed does. Found by review: Revoke said "no certificate has been
// obtained for this name yet" and revoked nothing.
func TestRevokeStoredUnderOldKeyType(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	const name = "oldkey.example.test"
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	serial := m.Status()[0].Serial

	refuseOrders(p) // the replacement is not what this test is about
	cli := cfg
	cli.OnEvent, cli.Logger = nil, testLogger(t)
	other, err := New(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ManageCerts(context.Background(), Cert{Names: []string{name}, KeyTypes: []KeyType{RSA2048}}); err != nil {
		t.Fatal(err)
	}
	err = other.Revoke(context.Background(), name, ReasonKeyCompromise)
	if err != nil && strings.Contains(err.Error(), "no certificate has been obtained for this name yet") {
		t.Fatalf("Revoke = %v, though the ECDSA certificate for %s is stored and served", err, name)
	}
	if st, reason := p.CertStatus(t, serial); st != "Revoked" || reason != int(ReasonKeyCompromise) {
		t.Errorf("Pebble says the stored certificate %s is %s (reason %d), want Revoked (keyCompromise)", serial, st, reason)
	}
}
