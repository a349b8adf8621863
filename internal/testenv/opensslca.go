package testenv

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/devca"
)

// OpenSSLCA is a certificate authority run with the openssl command-line
// tools, for tests of revocation checking and OCSP stapling against real
// OpenSSL output rather than certificates made by Go:
//
//   - NewOpenSSLCA makes a root (or, with OpenSSLCAOptions.Parent, an
//     intermediate) with `openssl req` / `openssl ca` and an index.txt;
//   - Issue issues server or client certificates (EC P-256 keys) whose
//     Authority Information Access names the CA's OCSP responder (OCSPURL)
//     and whose CRL Distribution Points name CRLURL;
//   - Revoke marks a certificate revoked in index.txt (`openssl ca
//     -revoke`), makes a new CRL and restarts the responder if it runs;
//   - GenCRL writes the CRL (`openssl ca -gencrl`) as PEM (CRLFile) and
//     DER (CRLDERFile); CRLURL serves the DER file over HTTP on loopback;
//   - StartOCSP / StopOCSP run `openssl ocsp -index index.txt -port …` on
//     the port of OCSPURL, signing with a delegated responder certificate
//     (id-kp-OCSPSigning) or, if asked, with the CA's own key.
//
// Everything lives in a t.TempDir and is stopped in t.Cleanup. Methods
// call t.Fatal on failure, so they must be called from the test's
// goroutine. They are safe for concurrent use otherwise.
type OpenSSLCA struct {
	// Name is the CA's common name.
	Name string
	// Dir holds the CA's files (openssl.cnf, index.txt, keys, certificates).
	Dir string
	// CertFile and KeyFile are the CA's certificate and private key, PEM.
	CertFile, KeyFile string
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// Parent is the CA that issued this one; nil for a root.
	Parent *OpenSSLCA
	// CRLFile (PEM) and CRLDERFile (DER) hold the latest CRL: written at
	// creation and again by GenCRL and Revoke.
	CRLFile, CRLDERFile string
	// CRLURL is an http URL on 127.0.0.1 that serves CRLDERFile as it is
	// at each request; issued certificates name it as CRL distribution
	// point.
	CRLURL string
	// OCSPURL is http://127.0.0.1:PORT/, where StartOCSP runs the
	// responder; issued certificates name it in their AIA.
	OCSPURL string

	t       testing.TB
	cnf     string
	port    int
	mu      sync.Mutex
	serial  int
	ocsp    *ocspProcess
	ocspOpt OCSPResponderOptions
}

// OpenSSLCAOptions configures NewOpenSSLCA.
type OpenSSLCAOptions struct {
	// Name is the CA's common name; default "tlspilot test CA" (plus
	// " intermediate" under a Parent).
	Name string
	// Parent, if set, issues this CA as an intermediate, with the
	// parent's OCSP URL in its AIA and the parent's CRL URL as its CRL
	// distribution point.
	Parent *OpenSSLCA
}

// IssueOptions describes a certificate for OpenSSLCA.Issue.
type IssueOptions struct {
	// CommonName is the subject's CN; required.
	CommonName string
	// DNSNames and IPAddresses go into the subjectAltName.
	DNSNames    []string
	IPAddresses []string
	// Client makes a client certificate (extendedKeyUsage clientAuth);
	// otherwise a server certificate (serverAuth).
	Client bool
	// NoOCSP leaves the AIA OCSP URL out; NoCRL the CRL distribution point.
	NoOCSP, NoCRL bool
	// Days is the validity; default 30. It starts an hour ago.
	Days int
}

// IssuedCert is a certificate issued by an OpenSSLCA, with its files.
type IssuedCert struct {
	// CertFile is the certificate alone, PEM; KeyFile its private key,
	// PEM (PKCS #8, unencrypted).
	CertFile, KeyFile string
	// ChainFile is the certificate followed by the intermediates up to
	// (not including) the root: what a server sends.
	ChainFile string
	// Cert is the certificate, Issuer the CA that issued it.
	Cert   *x509.Certificate
	Issuer *OpenSSLCA
}

// OCSPResponderOptions configures StartOCSP.
type OCSPResponderOptions struct {
	// SignWithCA signs responses with the CA's key instead of the
	// delegated responder certificate.
	SignWithCA bool
	// NextUpdate is how far nextUpdate lies after thisUpdate, rounded up
	// to whole minutes (openssl ocsp -nmin); default one hour.
	NextUpdate time.Duration
}

// NewOpenSSLCA makes a CA in a new temporary directory, with an empty CRL
// and a delegated OCSP responder certificate. The responder is not
// started: call StartOCSP.
func NewOpenSSLCA(t testing.TB, opts OpenSSLCAOptions) *OpenSSLCA {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl CA: %v (apt-get install openssl)", err)
	}
	ca := &OpenSSLCA{Name: opts.Name, Parent: opts.Parent, Dir: t.TempDir(), t: t, serial: 1}
	if ca.Name == "" {
		ca.Name = "tlspilot test CA"
		if opts.Parent != nil {
			ca.Name += " intermediate"
		}
	}
	ca.CertFile = filepath.Join(ca.Dir, "ca.crt")
	ca.KeyFile = filepath.Join(ca.Dir, "ca.key")
	ca.CRLFile = filepath.Join(ca.Dir, "crl.pem")
	ca.CRLDERFile = filepath.Join(ca.Dir, "crl.der")
	ports, err := devca.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	ca.port = ports[0]
	ca.OCSPURL = "http://127.0.0.1:" + strconv.Itoa(ca.port) + "/"
	ca.serveCRL()
	ca.writeConfig()
	ca.makeCACert()
	ca.Cert = readCert(t, ca.CertFile)
	ca.issueResponderCert()
	ca.GenCRL()
	t.Cleanup(ca.StopOCSP)
	return ca
}

// serveCRL starts the HTTP server of CRLURL.
func (ca *OpenSSLCA) serveCRL() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ca.mu.Lock()
		data, err := os.ReadFile(ca.CRLDERFile)
		ca.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(data)
	}))
	ca.t.Cleanup(srv.Close)
	ca.CRLURL = srv.URL + "/ca.crl"
}

// writeConfig writes openssl.cnf and the files openssl ca keeps.
func (ca *OpenSSLCA) writeConfig() {
	ca.cnf = filepath.Join(ca.Dir, "openssl.cnf")
	cnf := fmt.Sprintf(`[ ca ]
default_ca = CA_default
[ CA_default ]
dir = %s
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_root ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[ ocsp_signer ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
noCheck = ignored
`, ca.Dir)
	ca.writeFile("openssl.cnf", cnf)
	ca.writeFile("index.txt", "")
	ca.writeFile("serial", randomSerial(ca.t)+"\n")
	ca.writeFile("crlnumber", "1000\n")
	if err := os.Mkdir(filepath.Join(ca.Dir, "newcerts"), 0o700); err != nil {
		ca.t.Fatal(err)
	}
}

// makeCACert self-signs a root, or has the parent issue an intermediate.
func (ca *OpenSSLCA) makeCACert() {
	subj := "/CN=" + ca.Name
	if ca.Parent == nil {
		ca.openssl("req", "-config", ca.cnf, "-x509", "-new", "-newkey", "ec",
			"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca.KeyFile,
			"-out", ca.CertFile, "-days", "3650", "-subj", subj, "-extensions", "v3_root")
		return
	}
	csr := filepath.Join(ca.Dir, "ca.csr")
	ca.openssl("req", "-config", ca.cnf, "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca.KeyFile,
		"-out", csr, "-subj", subj)
	ext := ca.Parent.extensions("basicConstraints = critical,CA:true\n"+
		"keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n", false, false)
	ca.Parent.sign(csr, ca.CertFile, ext, 3650)
}

// issueResponderCert issues the delegated OCSP responder certificate.
func (ca *OpenSSLCA) issueResponderCert() {
	csr := ca.path("ocsp.csr")
	ca.openssl("req", "-config", ca.cnf, "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca.path("ocsp.key"),
		"-out", csr, "-subj", "/CN="+ca.Name+" OCSP responder")
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.openssl("ca", "-batch", "-config", ca.cnf, "-in", csr, "-out", ca.path("ocsp.crt"),
		"-extensions", "ocsp_signer", "-days", "3650", "-notext", "-startdate", startDate())
}

// Issue issues a certificate as opts describes, with a new key.
func (ca *OpenSSLCA) Issue(opts IssueOptions) *IssuedCert {
	ca.t.Helper()
	if opts.CommonName == "" {
		ca.t.Fatal("openssl CA: Issue needs a CommonName")
	}
	ca.mu.Lock()
	base := "leaf" + strconv.Itoa(ca.serial)
	ca.serial++
	ca.mu.Unlock()
	c := &IssuedCert{
		CertFile:  ca.path(base + ".crt"),
		KeyFile:   ca.path(base + ".key"),
		ChainFile: ca.path(base + ".chain.pem"),
		Issuer:    ca,
	}
	csr := ca.path(base + ".csr")
	ca.openssl("req", "-config", ca.cnf, "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.KeyFile,
		"-out", csr, "-subj", "/CN="+opts.CommonName)
	days := opts.Days
	if days <= 0 {
		days = 30
	}
	ca.sign(csr, c.CertFile, ca.extensions(leafExtensions(opts), opts.NoOCSP, opts.NoCRL), days)
	c.Cert = readCert(ca.t, c.CertFile)
	ca.writeChain(c)
	return c
}

// leafExtensions are the extensions of an end-entity certificate.
func leafExtensions(opts IssueOptions) string {
	eku := "serverAuth"
	if opts.Client {
		eku = "clientAuth"
	}
	var san []string
	for _, n := range opts.DNSNames {
		san = append(san, "DNS:"+n)
	}
	for _, ip := range opts.IPAddresses {
		san = append(san, "IP:"+ip)
	}
	ext := "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n" +
		"extendedKeyUsage = " + eku + "\n"
	if len(san) > 0 {
		ext += "subjectAltName = " + strings.Join(san, ",") + "\n"
	}
	return ext
}

// extensions completes ext with the identifiers, AIA and CRL DP of ca.
func (ca *OpenSSLCA) extensions(ext string, noOCSP, noCRL bool) string {
	ext = "[ ext ]\n" + ext + "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
	if !noOCSP {
		ext += "authorityInfoAccess = OCSP;URI:" + ca.OCSPURL + "\n"
	}
	if !noCRL {
		ext += "crlDistributionPoints = URI:" + ca.CRLURL + "\n"
	}
	return ext
}

// sign has ca issue a certificate for csr with the extension section ext.
func (ca *OpenSSLCA) sign(csr, out, ext string, days int) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	extFile := out + ".ext"
	if err := os.WriteFile(extFile, []byte(ext), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	ca.openssl("ca", "-batch", "-config", ca.cnf, "-in", csr, "-out", out, "-extfile", extFile,
		"-extensions", "ext", "-days", strconv.Itoa(days), "-notext", "-startdate", startDate())
}

// writeChain writes c's certificate and the intermediates above it.
func (ca *OpenSSLCA) writeChain(c *IssuedCert) {
	chain := ca.readFile(c.CertFile)
	for p := ca; p != nil && p.Parent != nil; p = p.Parent {
		chain = append(chain, ca.readFile(p.CertFile)...)
	}
	if err := os.WriteFile(c.ChainFile, chain, 0o600); err != nil {
		ca.t.Fatal(err)
	}
}

// Revoke marks the certificate in certFile (issued by ca: a leaf's
// CertFile or an intermediate's) revoked with a CRL reason such as
// "keyCompromise" or "superseded" ("" for unspecified), writes a new CRL,
// and restarts the OCSP responder if it runs, so both tell at once.
func (ca *OpenSSLCA) Revoke(certFile, reason string) {
	ca.t.Helper()
	args := []string{"ca", "-config", ca.cnf, "-revoke", certFile}
	if reason != "" {
		args = append(args, "-crl_reason", reason)
	}
	ca.mu.Lock()
	ca.openssl(args...)
	running := ca.ocsp != nil
	opts := ca.ocspOpt
	ca.mu.Unlock()
	ca.GenCRL()
	if running {
		ca.StopOCSP()
		ca.StartOCSP(opts)
	}
}

// GenCRL writes a new CRL (valid one day) to CRLFile and CRLDERFile.
func (ca *OpenSSLCA) GenCRL() {
	ca.t.Helper()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.openssl("ca", "-config", ca.cnf, "-gencrl", "-out", ca.CRLFile)
	ca.openssl("crl", "-in", ca.CRLFile, "-outform", "DER", "-out", ca.CRLDERFile)
}

// openssl runs the openssl command in ca.Dir and fails the test on error.
func (ca *OpenSSLCA) openssl(args ...string) {
	ca.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = ca.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		ca.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// path returns the name of a file in ca.Dir.
func (ca *OpenSSLCA) path(name string) string { return filepath.Join(ca.Dir, name) }

// writeFile writes a file in ca.Dir.
func (ca *OpenSSLCA) writeFile(name, content string) {
	if err := os.WriteFile(ca.path(name), []byte(content), 0o600); err != nil {
		ca.t.Fatal(err)
	}
}

// readFile reads a file or fails the test.
func (ca *OpenSSLCA) readFile(name string) []byte {
	data, err := os.ReadFile(name)
	if err != nil {
		ca.t.Fatal(err)
	}
	return data
}

// readCert parses the first PEM certificate of a file.
func readCert(t testing.TB, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// randomSerial returns a first serial number: 16 hex digits, high bit clear.
func randomSerial(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&0x7f | 0x10
	return hex.EncodeToString(b)
}

// startDate is an hour ago in the UTCTime form openssl ca -startdate takes,
// so a certificate is valid at once whatever the clocks' rounding.
func startDate() string {
	return time.Now().Add(-time.Hour).UTC().Format("060102150405Z")
}
