package tlspilot

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// recordingDeployer is a Deployer that keeps the key it was handed.
type recordingDeployer struct {
	mu   sync.Mutex
	keys [][]byte
}

func (d *recordingDeployer) Write(_ context.Context, _, keyPEM []byte) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = append(d.keys, append([]byte(nil), keyPEM...))
	return true, nil
}

func (d *recordingDeployer) Reload(context.Context) error { return nil }

// TestTrialStaleSealedKeyRefused: the sealed key of a certificate record
// replaced by the sealed key of an older record of the same certificate
// (a restored backup, or anyone who can write to the storage: the
// ciphertext is bound to the record's name, which is the same) opens; the
// certificate and the key no longer belong together. It must be taken
// for a damaged record (logged, obtained again), never served, which
// failed every handshake with the certificate, nor deployed, which left
// the other software with a key that does not match its certificate.
func TestTrialStaleSealedKeyRefused(t *testing.T) {
	ctx := t.Context()
	const name = "stale.example.test"
	cfg := Config{CA: benchCA, StorageDir: t.TempDir()}
	fx := newFixtureWith(t, cfg)
	id := certstore.CertID([]string{name}, keys.ECDSAP256)
	rec := filepath.Join(cfg.StorageDir, "data", "certs", id, "cert.json")
	if _, err := fx.storeCert(ctx, name, 1); err != nil {
		t.Fatal(err)
	}
	older := readCertRecord(t, rec)
	if _, err := fx.storeCert(ctx, name, 2); err != nil {
		t.Fatal(err)
	}
	newer := readCertRecord(t, rec)
	newer["sealed_key"] = older["sealed_key"]
	b, err := json.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, b, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := fx.store.LoadCert(ctx, id); !errors.Is(err, certstore.ErrDamaged) {
		t.Errorf("LoadCert of a record whose key is not its certificate's: %v, want ErrDamaged", err)
	}
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &recordingDeployer{}
	if err := m.ManageCerts(ctx, Cert{Names: []string{name}, Deployers: map[KeyType]Deployer{ECDSAP256: d}}); err != nil {
		t.Fatal(err)
	}
	tc, err := m.GetCertificate(helloFor(name))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub := tc.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(leaf.PublicKey) {
		t.Errorf("served certificate %s with a private key that is not its own", leaf.SerialNumber)
	}
	if st := m.Status()[0]; !strings.Contains(st.LastError, "does not match") {
		t.Errorf("status: last error %q, want the key that does not match its certificate", st.LastError)
	}
	_ = m.Deploy(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.keys) != 0 {
		t.Errorf("deployed a key that does not match its certificate (%d writes)", len(d.keys))
	}
}

// readCertRecord returns the stored certificate record at path as JSON
// fields.
func readCertRecord(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
