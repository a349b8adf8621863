package tlspilot

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// importedCert returns a PEM certificate for names with a new P-256 key,
// valid from notBefore for 90 days.
func importedCert(t *testing.T, serial int64, notBefore time.Time, names ...string) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), DNSNames: names, NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// TestImport: an imported certificate is stored once (again: unchanged),
// an older one does not replace it, a newer one does, and one whose key
// or names do not match is refused. An imported account key is never
// replaced by another.
func TestImport(t *testing.T) {
	ctx := t.Context()
	m, err := New(ctx, Config{CA: "https://127.0.0.1:9/dir", Email: "ops@example.test", StorageDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	chain, key := importedCert(t, 2, now.Add(-time.Hour), "a.example", "b.example")
	older, okey := importedCert(t, 1, now.Add(-48*time.Hour), "a.example", "b.example")
	newer, nkey := importedCert(t, 3, now, "a.example", "b.example")
	for _, tc := range []struct {
		chain []byte
		key   crypto.Signer
		names []string
		want  ImportResult
	}{
		{chain, key, []string{"A.example", "b.example"}, ImportStored},
		{chain, key, []string{"a.example", "b.example"}, ImportUnchanged},
		{older, okey, []string{"a.example", "b.example"}, ImportKept},
		{newer, nkey, []string{"b.example", "a.example"}, ImportStored},
		{newer, key, []string{"a.example", "b.example"}, ""},
		{newer, nkey, []string{"a.example", "c.example"}, ""},
		{nil, nkey, []string{"a.example"}, ""},
		{newer, nkey, nil, ""},
	} {
		got, err := m.Import(ctx, Imported{Names: tc.names, ChainPEM: tc.chain, Key: tc.key, CA: "https://127.0.0.1:9/dir", SameAccount: true})
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("Import %v: %q, %v; want %q", tc.names, got, err, tc.want)
		}
		if tc.key == key && bytes.Equal(tc.chain, newer) && (err == nil || !strings.Contains(err.Error(), "not for this private key")) {
			t.Errorf("Import with another key: %v; want it to say the certificate is not for this private key (there is no CSR)", err)
		}
	}
	r := ReadStatus(ctx, Config{CA: "https://127.0.0.1:9/dir", StorageDir: m.cfg.StorageDir}, Cert{Names: []string{"a.example", "b.example"}})
	if len(r.Certificates) != 1 || r.Certificates[0].Serial != "3" {
		t.Errorf("status after imports: %+v", r.Certificates)
	}

	acct, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		key  crypto.Signer
		want ImportResult
	}{{acct, ImportStored}, {acct, ImportUnchanged}, {other, ImportKept}} {
		if got, err := m.ImportAccount(ctx, tc.key, "https://127.0.0.1:9/acct/1"); got != tc.want || err != nil {
			t.Errorf("ImportAccount: %q, %v; want %q", got, err, tc.want)
		}
	}
	if st := m.AccountStatus(ctx); st.URL != "https://127.0.0.1:9/acct/1" {
		t.Errorf("account after import: %+v", st)
	}
}
