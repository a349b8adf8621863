package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestStatusCertFiles: `status` on a serve config whose sites all read
// cert_file pairs another process writes grades those certificates by
// their expiry, so a monitor of the serving half sees them expire.
func TestStatusCertFiles(t *testing.T) {
	dir := t.TempDir()
	pair := func(name string, notBefore, notAfter time.Time) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		write(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
		return cert, keyFile
	}
	now := time.Now()
	site := func(name, cert, key string) string {
		return fmt.Sprintf("\n[[site]]\nnames = [%q]\ncert_file = %q\nkey_file = %q\n", name, cert, key)
	}
	conf := filepath.Join(dir, "serve.toml")
	vc, vk := pair("valid.example.test", now.Add(-24*time.Hour), now.Add(60*24*time.Hour))
	ec, ek := pair("expiring.example.test", now.Add(-80*24*time.Hour), now.Add(2*24*time.Hour))
	write(t, conf, "storage = "+strconvQuote(filepath.Join(dir, "storage"))+"\nadmin_listen = \"off\"\n"+
		site("valid.example.test", vc, vk)+site("expiring.example.test", ec, ek))

	code, out, errOut := runBinary(t, "status", "--config", conf)
	if code != tlspilot.ExitWarning || !strings.HasPrefix(out, "WARNING: 1 expiring, 1 valid") || strings.Contains(out, "account:") {
		t.Errorf("status with an expiring cert_file: exit %d\n%s%s", code, out, errOut)
	}
	// Expired: CRITICAL, and the JSON names the file.
	xc, xk := pair("expired.example.test", now.Add(-90*24*time.Hour), now.Add(-time.Hour))
	write(t, conf, readFile(t, conf)+site("expired.example.test", xc, xk))
	code, out, errOut = runBinary(t, "status", "--json", "--config", conf)
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json: %v\n%s%s", err, out, errOut)
	}
	if code != tlspilot.ExitCritical || len(r.Certificates) != 3 || r.Certificates[0].State != tlspilot.StateExpired || r.Certificates[0].CertFile != xc {
		t.Errorf("status --json with an expired cert_file: exit %d, %+v", code, r.Certificates)
	}
}

// TestStatusMissingStorage: status on a config whose storage directory
// does not exist (a typo, or serve never ran with it) says so below its
// report (and as "note" in --json), rather than leaving a pending
// certificate unexplained; with the directory there, or only cert_file
// sites, it says nothing.
func TestStatusMissingStorage(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	storage := filepath.Join(dir, "storage-typo")
	write(t, conf, "storage = "+strconvQuote(storage)+"\nadmin_listen = \"off\"\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"pending.example.test\"]\n")
	_, out, errOut := runBinary(t, "status", "--config", conf)
	if !strings.Contains(out, "note: the storage "+storage+" does not exist") {
		t.Errorf("status with no storage directory:\n%s%s", out, errOut)
	}
	// The monitoring system reading --json gets it too.
	_, out, errOut = runBinary(t, "status", "--json", "--config", conf)
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || !strings.HasPrefix(r.Note, "the storage "+storage+" does not exist") {
		t.Errorf("status --json with no storage directory: note %q (%v)\n%s%s", r.Note, err, out, errOut)
	}
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, out, _ = runBinary(t, "status", "--config", conf); strings.Contains(out, "note:") {
		t.Errorf("status with the storage directory there:\n%s", out)
	}
}
