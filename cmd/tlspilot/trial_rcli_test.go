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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestStatusCertFileBesideDamaged: the cert_file pairs of a config's
// sites are reported also when another certificate's record cannot be
// read. `status NAME` for such a site said "no certificate for this
// name" (UNKNOWN) whenever any record in the storage was damaged, and
// plain status hid an expired cert_file certificate under the UNKNOWN
// line: readStatus dropped the files of every report that was UNKNOWN,
// though one made UNKNOWN by a damaged record lists its certificates.
func TestStatusCertFileBesideDamaged(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key := trialPair(t, dir, "files.example.test", now.Add(-90*24*time.Hour), now.Add(-time.Hour))
	conf := filepath.Join(dir, "tlspilot.toml")
	storage := filepath.Join(dir, "storage")
	write(t, conf, "storage = "+strconvQuote(storage)+"\nadmin_listen = \"off\"\nca = \"https://127.0.0.1:1/dir\"\n\n"+
		fmt.Sprintf("[[site]]\nnames = [\"files.example.test\"]\ncert_file = %q\nkey_file = %q\n\n", cert, key)+
		"[[site]]\nnames = [\"damaged.example.test\"]\n")
	fs, err := fsstore.New(fsstore.Options{Dir: storage})
	if err != nil {
		t.Fatal(err)
	}
	id := certstore.CertID([]string{"damaged.example.test"}, tlspilot.ECDSAP256)
	if err := fs.Store(t.Context(), "certs/"+id+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "status", "-c", conf, "--json", "files.example.test")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != tlspilot.ExitCritical || len(r.Certificates) != 1 ||
		r.Certificates[0].CertFile != cert || r.Certificates[0].State != tlspilot.StateExpired {
		t.Errorf("status files.example.test beside a damaged record: exit %d, %v\n%s%s; want its expired cert_file, CRITICAL", code, err, out, errOut)
	}
	// The whole report, UNKNOWN with its certificates, follows the
	// documented schema.
	code, out, errOut = runCLI(t, "status", "-c", conf, "--json")
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err == nil {
		err = statusSchema(t).Validate(doc)
	}
	r = tlspilot.StatusReport{}
	if err == nil {
		err = json.Unmarshal([]byte(out), &r)
	}
	if err != nil || code != tlspilot.ExitUnknown || len(r.Certificates) != 2 || r.Error == "" {
		t.Errorf("status --json beside a damaged record: exit %d, %v\n%s%s; want UNKNOWN, both certificates, the schema's shape", code, err, out, errOut)
	}
	code, out, errOut = runCLI(t, "status", "-c", conf)
	if code != tlspilot.ExitUnknown || !strings.Contains(out, "files.example.test") || !strings.Contains(out, "expired") {
		t.Errorf("status beside a damaged record: exit %d\n%s%s; want UNKNOWN, and the expired cert_file listed", code, out, errOut)
	}
}

// trialPair writes a self-signed certificate for name and its key into
// dir, and returns their paths.
func trialPair(t *testing.T, dir, name string, notBefore, notAfter time.Time) (string, string) {
	t.Helper()
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

// TestAgentStatusNamedKeepsNote: `status NAME` on an agent's config
// keeps the report's note (its storage does not exist: nothing was
// enrolled), as status without NAMEs prints it; selecting the names
// dropped it, leaving a pending certificate unexplained.
func TestAgentStatusNamedKeepsNote(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "fleet-ca.pem"), selfSignedPEM(t))
	conf := agentConfig(t, dir, "127.0.0.1:1", filepath.Join(dir, "fleet-ca.pem"), "db1.example.com")
	code, out, errOut := runCLI(t, "status", "--config", conf, "db1.example.com")
	if code != tlspilot.ExitWarning || !strings.Contains(out, "note: the storage ") {
		t.Errorf("status db1.example.com: exit %d\n%s%s; want WARNING and the note", code, out, errOut)
	}
	code, out, _ = runCLI(t, "status", "--config", conf, "--json", "db1.example.com")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != tlspilot.ExitWarning || !strings.Contains(r.Note, "does not exist") {
		t.Errorf("status --json db1.example.com: exit %d, %v, note %q; want the note", code, err, r.Note)
	}
}
