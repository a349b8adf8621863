package tlspilot

import (
	"errors"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestTrialRevokeStoredBesideDamagedRecord: a name whose configured
// certificate's record is damaged, while a readable certificate for that
// very name is stored (and served by a serve not restarted since the
// key type changed), has the readable one revoked, and the damaged one
// reported as a failure. Found by a review: a damaged record among the
// configured ones returned its error at once, and the stored certificate
// was never sent to the CA, as if no other existed; only a configured
// record that did not exist at all let Revoke look for it.
func TestTrialRevokeStoredBesideDamagedRecord(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	const name = "stored-beside-damaged.example.test"
	obtain(t, p, cfg, Cert{Names: []string{name}}) // ECDSA, the default
	ecdsaID, rsaID := certstore.CertID([]string{name}, ECDSAP256), certstore.CertID([]string{name}, RSA2048)
	c, err := mustStore(t, cfg).LoadCertInfo(t.Context(), ecdsaID)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(t.Context(), "certs/"+rsaID+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(t.Context(), Cert{Names: []string{name}, KeyTypes: []KeyType{RSA2048}}); err != nil {
		t.Fatal(err)
	}
	err = m.Revoke(t.Context(), name, ReasonKeyCompromise)
	if err == nil || !strings.Contains(err.Error(), rsaID) || !errors.Is(err, certstore.ErrDamaged) {
		t.Errorf("Revoke beside a damaged record: %v; want an error naming the damaged %s", err, rsaID)
	}
	if got, reason := p.CertStatus(t, serialOfPEM(c.ChainPEM)); got != "Revoked" || reason != int(ReasonKeyCompromise) {
		t.Errorf("the stored readable certificate %s is %s (reason %d) at the CA, want Revoked (keyCompromise)", ecdsaID, got, reason)
	}
}
