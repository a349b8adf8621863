package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCertFilesAppear: a site whose certificate files do not exist yet is
// served with a temporary self-signed certificate for its names, with a
// warning naming the files; half a pair keeps it; once both files exist
// and load, the real certificate is served without a reload. Files that
// then appear but do not load leave the temporary one in service, logged.
func TestCertFilesAppear(t *testing.T) {
	real := newTestCert(t, "late.test")
	dir := filepath.Join(t.TempDir(), "live") // not even the directory exists yet
	live := CertSource{CertFile: filepath.Join(dir, "fullchain.pem"), KeyFile: filepath.Join(dir, "privkey.pem")}
	log := &syncBuffer{}
	ts := startServer(t, Options{
		CertCheckInterval: 20 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(log, nil)),
		Sites:             []Site{{Names: []string{"late.test", "127.0.0.1"}, Root: staticSite(t), Cert: live}},
	})
	temp, err := ts.handshake("late.test")
	if err != nil {
		t.Fatalf("handshake before the files exist: %v", err)
	}
	if temp.Subject.CommonName != "tlspilot temporary certificate" || temp.VerifyHostname("late.test") != nil || temp.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("temporary certificate: subject %q, names %v %v", temp.Subject, temp.DNSNames, temp.IPAddresses)
	}
	if l := log.String(); !strings.Contains(l, "level=WARN msg=\"certificate files do not exist yet") ||
		!strings.Contains(l, "cert_file="+live.CertFile) || !strings.Contains(l, "key_file="+live.KeyFile) {
		t.Errorf("no warning naming the files:\n%s", l)
	}

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, real.certFile, live.CertFile) // the certificate before its key
	time.Sleep(100 * time.Millisecond)
	if leaf, err := ts.handshake("late.test"); err != nil || !leaf.Equal(temp) {
		t.Fatalf("half a pair: %v; want the temporary certificate still", err)
	}
	copyFile(t, real.keyFile, live.KeyFile)
	waitFor(t, func() bool { leaf, err := ts.handshake("late.test"); return err == nil && leaf.Equal(real.leaf) })
	if !strings.Contains(log.String(), "certificate files appeared") {
		t.Errorf("switch not logged:\n%s", log.String())
	}

	// Another site waiting for files that appear mismatched.
	other := newTestCert(t, "late.test")
	dir2 := filepath.Join(t.TempDir(), "live")
	bad := CertSource{CertFile: filepath.Join(dir2, "fullchain.pem"), KeyFile: filepath.Join(dir2, "privkey.pem")}
	if err := ts.Reload([]Site{{Names: []string{"late.test"}, Cert: bad}}); err != nil {
		t.Fatalf("reload with files that do not exist: %v", err)
	}
	temp2, err := ts.handshake("late.test")
	if err != nil || temp2.Subject.CommonName != "tlspilot temporary certificate" {
		t.Fatalf("after reload: %v, want a temporary certificate", err)
	}
	if err := os.Mkdir(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, real.certFile, bad.CertFile)
	copyFile(t, other.keyFile, bad.KeyFile)
	waitFor(t, func() bool { return strings.Contains(log.String(), "do not load; serving the temporary certificate") })
	if leaf, err := ts.handshake("late.test"); err != nil || !leaf.Equal(temp2) {
		t.Errorf("mismatched pair: %v; want the temporary certificate still", err)
	}
}

// TestCertFilesBadPairRefused: files that exist but do not make a pair
// are still refused by New, as a typo or a wrong key is not "not written
// yet".
func TestCertFilesBadPairRefused(t *testing.T) {
	a, b := newTestCert(t, "a.test"), newTestCert(t, "a.test")
	for name, src := range map[string]CertSource{
		"mismatched":     {CertFile: a.certFile, KeyFile: b.keyFile},
		"key as cert":    {CertFile: a.keyFile, KeyFile: a.keyFile},
		"cert a dir":     {CertFile: filepath.Dir(a.certFile), KeyFile: a.keyFile},
		"garbage in key": {CertFile: a.certFile, KeyFile: a.certFile},
	} {
		_, err := New(Options{HTTPSListener: listen(t), Sites: []Site{{Names: []string{"a.test"}, Cert: src}}})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCertFilesGoneAtReload: files that served a certificate and are gone
// when the site table is reloaded leave that certificate in service (not a
// temporary one), logged; when files are back they are loaded again.
func TestCertFilesGoneAtReload(t *testing.T) {
	a, b := newTestCert(t, "kept.test"), newTestCert(t, "kept.test")
	dir := t.TempDir()
	live := CertSource{CertFile: filepath.Join(dir, "fullchain.pem"), KeyFile: filepath.Join(dir, "privkey.pem")}
	copyFile(t, a.certFile, live.CertFile)
	copyFile(t, a.keyFile, live.KeyFile)
	log := &syncBuffer{}
	sites := []Site{{Names: []string{"kept.test"}, Cert: live}}
	ts := startServer(t, Options{CertCheckInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(log, nil)), Sites: sites})
	for _, f := range []string{live.CertFile, live.KeyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Reload(sites); err != nil {
		t.Fatalf("reload with the files gone: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if leaf, err := ts.handshake("kept.test"); err != nil || !leaf.Equal(a.leaf) {
		t.Fatalf("after reload: %v; want the certificate loaded before", err)
	}
	if !strings.Contains(log.String(), "certificate files unavailable; serving the loaded certificate") {
		t.Errorf("not logged:\n%s", log.String())
	}
	copyFile(t, b.certFile, live.CertFile)
	copyFile(t, b.keyFile, live.KeyFile)
	waitFor(t, func() bool { leaf, err := ts.handshake("kept.test"); return err == nil && leaf.Equal(b.leaf) })
}
