package fleet

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// TestIdentityUnloadableNoRenewLoop: a new identity in the storage this
// Keeper cannot open (enrolled with another kek_file) while its own
// client certificate is due for renewal: the Keeper renews once, keeps
// using what it has, and asks for its next pass in the future. A first
// version renewed, dropped the renewal for the stored identity it could
// not load, and asked for the next pass at once: a new client
// certificate on every pass, without end. Found by review.
func TestIdentityUnloadableNoRenewLoop(t *testing.T) {
	ctx := t.Context()
	is := startIssuer(t)
	e := newAgentEnv(t)
	if err := SaveIdentity(ctx, e.st, e.sealer, is.enrol(t, "db1")); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeeper(ctx, KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: is.url, Roots: is.roots,
		Certificates: []KeptCert{{Names: []string{"db1.example.com"}, KeyType: keys.ECDSAP256}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(ctx, e.st, other, is.enrol(t, "db1")); err != nil {
		t.Fatal(err)
	}
	old := k.serial()
	oldRenewAt := k.id.RenewAt()
	k.Pass(ctx, oldRenewAt.Add(time.Minute), false) // the identity in use is due
	if k.serial() == old {
		t.Fatalf("the renewal of the client certificate was dropped (serial %s): each pass would renew again at once", k.serial())
	}
	id, err := LoadIdentity(ctx, e.st, e.sealer)
	if err != nil || serialHex(id.Certificate) != k.serial() || k.identityChanged(ctx) {
		t.Errorf("stored identity after the renewal: %v; want the Keeper's own, readable", err)
	}
}
