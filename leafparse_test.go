package tlspilot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
)

// TestUnparsableLeafDoesNotStopStartup: one stored certificate whose
// leaf DER does not parse (bit rot inside the base64, a certificate Go's
// x509 refuses) does not stop the others from loading, as it did while
// the leaf was parsed at load (found by review); the leaf is parsed at
// first use, and GetCertificate still answers without it.
func TestUnparsableLeafDoesNotStopStartup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	cfg := Config{CA: "https://127.0.0.1:1/dir", StorageDir: dir}
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	id := certstore.CertID([]string{"a.example.test"}, m.cfg.KeyTypes[0])
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("\x30\x03\x02\x01\x01 not a certificate")}))
	c := certstore.Cert{Names: []string{"a.example.test"}, KeyType: m.cfg.KeyTypes[0], ChainPEM: chain, Key: key,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), Obtained: now.Add(-time.Hour), CA: cfg.CA}
	if err := m.store.StoreCert(ctx, id, c); err != nil {
		t.Fatal(err)
	}
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = m2.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}}, Cert{Names: []string{"b.example.test"}})
	t.Logf("ManageCerts: %v", err)
	if err != nil {
		if _, gerr := m2.GetCertificate(helloFor("b.example.test")); gerr != nil {
			t.Logf("b.example.test not served either: %v", gerr)
		}
		t.Error("one unparsable stored leaf stops every certificate of the call")
	}
	if _, err := m2.GetCertificate(helloFor("a.example.test")); err != nil {
		t.Errorf("the certificate whose leaf does not parse: %v", err)
	}
}
