package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a directory holding what configs refer to: a static root
// "www", a CA file "ca.pem", a certificate "site.pem" with key "site.key"
// for example.com and www.example.com, and a TSIG secret "tsig.secret"
// (mode 0600).
type fixture struct {
	dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(f.dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t, "example.com", "www.example.com")
	f.write(t, "ca.pem", certPEM, 0o644)
	f.write(t, "site.pem", certPEM, 0o644)
	f.write(t, "site.key", keyPEM, 0o600)
	f.write(t, "tsig.secret", "c2VjcmV0Cg==\n", 0o600)
	f.write(t, "eab.key", "aGVsbG8\n", 0o600)
	return f
}

func (f *fixture) write(t *testing.T, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// parse parses text as the file tlspilot.toml in the fixture directory,
// with $DIR replaced by that directory.
func (f *fixture) parse(t *testing.T, text string) (*Config, error) {
	t.Helper()
	text = strings.ReplaceAll(text, "$DIR", f.dir)
	return Parse(filepath.Join(f.dir, "tlspilot.toml"), []byte(text))
}

// mustParse parses text and fails the test on error.
func (f *fixture) mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := f.parse(t, text)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// selfSigned returns a PEM certificate for names and its PEM key.
func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certPEM, keyPEM
}
