package clientauth

import (
	"bytes"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestPEMFilesMustBeWhole: a CRL or CA file cut short, with a block
// broken in its middle or with junk after its last block is an error
// naming the file; it was taken as a file with fewer blocks.
// Explanatory text before a block (`openssl x509 -text`, `openssl crl
// -text`) is still fine, and so are blocks of another type, skipped as
// OpenSSL skips them (a file holding a CA and its CRL serves as both),
// unless cut short or broken.
func TestPEMFilesMustBeWhole(t *testing.T) {
	ca1 := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	ca2 := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "second CA"})
	crl1, crl2 := readFile(t, ca1.CRLFile), readFile(t, ca2.CRLFile)
	cert1, cert2 := readFile(t, ca1.CertFile), readFile(t, ca2.CertFile)
	key := readFile(t, ca1.KeyFile)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name      string
		crl, cas  []byte
		wantCount int // 0: an error
	}{
		{"whole", cat(crl1, crl2), cat(cert1, cert2), 2},
		{"text before the blocks", cat(openssl(t, "crl", "-in", ca1.CRLFile, "-text"), []byte("\n"), crl2),
			cat(openssl(t, "x509", "-in", ca1.CertFile, "-text"), cert2), 2},
		{"cut short", cat(crl1, crl2[:200]), cat(cert1, cert2[:300]), 0},
		{"cut in the BEGIN line", cat(crl1, crl2[:8]), cat(cert1, cert2[:8]), 0},
		{"junk after the last block", cat(crl1, []byte("junk\n")), cat(cert1, []byte("junk\n")), 0},
		{"broken block in the middle", cat(crl1, crl2[:200], []byte("\n"), crl2), cat(cert1, cert2[:300], []byte("\n"), cert2), 0},
		{"another type", cat(crl1, cert2), cat(cert1, key), 1},
		{"another type first", cat(cert2, crl1, crl2), cat(key, cert1, cert2), 2},
		{"another type cut short", cat(crl1, cert2[:300]), cat(cert1, key[:100]), 0},
		{"another type only", cert2, key, 0},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := parseCRLs(tt.crl, "file.crl")
			if tt.wantCount > 0 && (err != nil || len(ls) != tt.wantCount) {
				t.Errorf("parseCRLs = %d CRLs, %v; want %d", len(ls), err, tt.wantCount)
			}
			if tt.wantCount == 0 && (err == nil || !strings.Contains(err.Error(), "file.crl")) {
				t.Errorf("parseCRLs = %d CRLs, %v; want an error naming the file", len(ls), err)
			}
			f := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".pem")
			if err := os.WriteFile(f, tt.cas, 0o600); err != nil {
				t.Fatal(err)
			}
			cas, err := ReadCAFile(f)
			if tt.wantCount > 0 && (err != nil || len(cas) != tt.wantCount) {
				t.Errorf("ReadCAFile = %d certificates, %v; want %d", len(cas), err, tt.wantCount)
			}
			if tt.wantCount == 0 && (err == nil || !strings.Contains(err.Error(), f)) {
				t.Errorf("ReadCAFile = %d certificates, %v; want an error naming the file", len(cas), err)
			}
		})
	}
}

// TestCRLFileRereadCutShort: a CRL file re-written cut short keeps its
// previous CRLs, as a file that does not parse does; it used to be read
// as a file with fewer CRLs, and with revocation_unknown = "allow" a
// revoked client of the CRL dropped got in.
func TestCRLFileRereadCutShort(t *testing.T) {
	ca1 := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	ca2 := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "second CA"})
	bob := client(ca2, "bob")
	ca2.Revoke(bob.CertFile, "")
	file := writeJoined(t, filepath.Join(t.TempDir(), "both.crl"), ca1.CRLFile, ca2.CRLFile)
	p := Policy{CAs: []*x509.Certificate{ca1.Cert, ca2.Cert}, Revocation: RevocationLeaf, CRLFiles: []string{file}, Unknown: UnknownAllow}
	chk := newChecker(t, p, Options{})
	refused(t, chk, bob, ReasonRevoked)

	cut := append(readFile(t, ca1.CRLFile), readFile(t, ca2.CRLFile)[:200]...)
	if err := os.WriteFile(file, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	chk.files.reload()
	refused(t, chk, bob, ReasonRevoked)
	if _, err := New(p, Options{}); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("New with the cut file: %v, want an error naming it", err)
	}
}

// openssl runs openssl with args and returns its output.
func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("openssl", args...).Output()
	if err != nil {
		t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return out
}
