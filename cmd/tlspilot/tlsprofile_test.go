package main

import (
	"crypto/tls"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// opensslCert writes a self-signed P-256 certificate for name with
// openssl and returns the certificate and key files.
func opensslCert(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/CN="+name, "-addext", "subjectAltName=DNS:"+name, "-days", "2", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return cert, key
}

// TestServeTLSProfiles: the built binary maps tls_profile (top-level
// default and per site) onto every certificate source: certificate
// files and a managed name served by its temporary certificate.
func TestServeTLSProfiles(t *testing.T) {
	dir := t.TempDir()
	aCert, aKey := opensslCert(t, dir, "a.test")
	mCert, mKey := opensslCert(t, dir, "m.test")
	https := freeAddr(t)
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, `ca = "https://127.0.0.1:9/directory"
agree_terms = true
storage = "`+filepath.Join(dir, "storage")+`"
http_listen = "`+freeAddr(t)+`"
https_listen = "`+https+`"
admin_listen = "off"
access_log = "off"
tls_profile = "modern"

[[site]]
names = ["a.test"]
cert_file = "`+aCert+`"
key_file = "`+aKey+`"
tls_profile = "intermediate"

[[site]]
names = ["m.test"]
cert_file = "`+mCert+`"
key_file = "`+mKey+`"

[[site]]
names = ["t.test"]
challenge = "tls-alpn-01"
`)
	e := &env{t: t, conf: conf}
	e.serve()
	dial := func(name string, version, suite uint16) error {
		c := &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: version, MaxVersion: version}
		if suite != 0 {
			c.CipherSuites = []uint16{suite}
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", https, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for dial("a.test", tls.VersionTLS13, 0) != nil {
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer TLS within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := dial("a.test", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA); err == nil {
		t.Error("a.test (intermediate): a TLS 1.2 CBC suite was accepted")
	}
	if err := dial("a.test", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Errorf("a.test (intermediate): TLS 1.2 with AES-GCM refused: %v", err)
	}
	for _, name := range []string{"m.test", "t.test"} {
		if err := dial(name, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%s (modern, the top-level default): TLS 1.2: %v, want a protocol_version alert", name, err)
		}
		if err := dial(name, tls.VersionTLS13, 0); err != nil {
			t.Errorf("%s (modern): TLS 1.3 refused: %v", name, err)
		}
	}
}
