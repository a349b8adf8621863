package tlspilot

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestRevokeReplacedElsewhereOrdersOnce: when the daemon serving the
// certificate takes the revocation up and obtains the replacement before
// the revoking process does (tlspilot revoke beside a running serve),
// the revoking process finds it under the issue lock and orders no
// second one. Before, its forced renewal ordered again whatever was
// stored: two certificates per revocation, against the CA's duplicate
// certificate limits.
func TestRevokeReplacedElsewhereOrdersOnce(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	const name = "replaced-elsewhere.example.test"
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	first := m.Status()[0].Serial

	cli := cfg
	cli.Logger = testLogger(t)
	cli.OnEvent = func(e Event) {
		if e.Type == EventRevoked {
			// The daemon takes the revocation up first (its storage
			// poll, made here at once).
			if err := m.Renew(context.Background(), RenewOptions{Names: []string{name}}); err != nil {
				t.Errorf("the serving Manager's renewal: %v", err)
			}
		}
	}
	other, err := New(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ManageCerts(context.Background(), Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	orders := p.Orders()
	if err := other.Revoke(context.Background(), name, ReasonSuperseded); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := p.Orders() - orders; n != 1 {
		t.Errorf("%d orders for one revocation, want 1", n)
	}
	st := m.Status()[0]
	if st.Serial == first || st.State != StateValid {
		t.Errorf("serving Manager after the revocation: serial %s (revoked %s), state %s; want a new valid one", st.Serial, first, st.State)
	}
	if got, _ := p.CertStatus(t, st.Serial); got != "Valid" {
		t.Errorf("the certificate in service is %s at the CA, want Valid", got)
	}
}

// TestCleanDamagedRecord: an unmanaged record whose certificate or
// renewal state cannot be decoded (a half-written file, a hand edit) is
// removed by Clean, as nothing can use it, and does not stop the others
// from being removed. Before, Clean stopped at it with an error every
// time: neither it nor any record sorted after it ever went.
func TestCleanDamagedRecord(t *testing.T) {
	cfg := noCAConfig(t)
	ctx := t.Context()
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	st := certstore.New(fs, nil)
	old := time.Now().Add(-48 * time.Hour)
	for _, rec := range []string{"a-damaged-cert/cert.json", "b-damaged-state/state.json"} {
		if err := fs.Store(ctx, "certs/"+rec, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.StoreState(ctx, "z-never-obtained", certstore.State{PendingSince: old, LastAttempt: old, Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := Clean(ctx, cfg, CleanOptions{OlderThan: time.Hour})
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if err != nil || !slices.Equal(ids, []string{"a-damaged-cert", "b-damaged-state", "z-never-obtained"}) {
		t.Fatalf("Clean: %v, removed %v; want the damaged records and the old one removed", err, got)
	}
	if left, err := storedIDs(ctx, st); err != nil || len(left) != 0 {
		t.Errorf("stored after Clean: %v %v, want nothing", left, err)
	}
}

// TestRevokeFromAnotherCA: a certificate obtained from another CA than
// the configured one (the config moved from staging to production) is
// sent for revocation to the configured CA, which refuses it; the error
// says where the certificate came from, rather than only the refusal of
// a CA that never issued it.
func TestRevokeFromAnotherCA(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	const name = "moved.example.test"
	obtain(t, p, cfg, Cert{Names: []string{name}})

	moved := cfg
	moved.CA = p.DirectoryURL + "?production"
	m, err := New(t.Context(), moved)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(t.Context(), Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/revoke-cert" {
			return false
		}
		testenv.WriteProblem(w, http.StatusForbidden, "unauthorized", "certificate not found", 0)
		return true
	})
	err = m.Revoke(t.Context(), name, ReasonSuperseded)
	if err == nil || !strings.Contains(err.Error(), "obtained from "+cfg.CA) || !strings.Contains(err.Error(), "certificate not found") {
		t.Errorf("Revoke of a certificate from another CA: %v; want the CA it came from named, and the refusal", err)
	}
}
