package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCAPEM returns a self-signed CA certificate, PEM.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestCheckAgent: check on an agent's config validates it as one (not
// as the main config, which would call issuer an unknown key and the
// wildcard an http-01 name) and says what the agent keeps; a bad agent
// config names its file, line and key, and one the agent would refuse to
// start with (no [[certificate]]) is refused.
func TestCheckAgent(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "fleet-ca.pem")
	writeFile(t, ca, string(testCAPEM(t)))
	conf := filepath.Join(dir, "agent.toml")
	good := `issuer = "https://issuer.example.com:8443"
issuer_ca = "` + ca + `"
storage = "` + filepath.Join(dir, "agent") + `"
[[certificate]]
names = ["db1.example.com", "*.db1.example.com"]
fullchain = "` + filepath.Join(dir, "fullchain.pem") + `"
privkey = "` + filepath.Join(dir, "privkey.pem") + `"
reload = ["systemctl", "reload", "postgresql"]
`
	writeFile(t, conf, good)
	code, out, errOut := runCLI(t, "check", "--config", conf)
	for _, want := range []string{"fleet agent of https://issuer.example.com:8443", "db1.example.com, *.db1.example.com (ecdsa-p256) -> fullchain ",
		"reload: systemctl reload postgresql", conf + ": OK"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check agent.toml: exit %d, stdout lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	writeFile(t, conf, strings.Replace(good, "storage", "storgae", 1))
	code, _, errOut = runCLI(t, "check", "--config", conf)
	if code != 1 || !strings.Contains(errOut, "agent.toml:3: storgae: unknown key") {
		t.Errorf("bad agent config: exit %d, %s", code, errOut)
	}
	// No [[certificate]]: the agent refuses to start, so check refuses
	// too (it said OK).
	head, _, _ := strings.Cut(good, "[[certificate]]")
	writeFile(t, conf, head)
	code, _, errOut = runCLI(t, "check", "--config", conf)
	if code != 1 || !strings.Contains(errOut, "agent.toml: certificate: no [[certificate]] table") {
		t.Errorf("agent config without certificates: exit %d, %s", code, errOut)
	}
}
