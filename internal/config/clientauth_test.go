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
	"slices"
	"strings"
	"testing"
	"time"
)

// writeCRL writes an empty CRL signed by a CA of its own, PEM or DER.
func (f *fixture) writeCRL(t *testing.T, name string, asPEM bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clients CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(cder)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
	}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	data := string(der)
	if asPEM {
		data = string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	f.write(t, name, data, 0o644)
}

func TestClientAuthDefaults(t *testing.T) {
	f := newFixture(t)
	f.writeCRL(t, "clients.crl", true)
	f.writeCRL(t, "clients.der", false)
	c := f.mustParse(t, `[[site]]
names = ["a.example"]
[site.client_auth]
ca = "ca.pem"

[[site]]
names = ["b.example"]
[site.client_auth]
ca = "$DIR/ca.pem"
mode = "optional"
verify_depth = 2
crl = ["clients.crl", "clients.der"]
ocsp = true
ocsp_responder = "http://127.0.0.1:2560/"
revocation_unknown = "allow"
header_prefix = "X-Mtls-"
require_paths = ["/admin/", "/api"]

[[site]]
names = ["c.example"]
`)
	a, b := c.Sites[0].ClientAuth, c.Sites[1].ClientAuth
	want := ClientAuth{Line: 3, CAFile: f.dir + "/ca.pem", Mode: "require", VerifyDepth: 1, Revocation: "off",
		RevocationUnknown: "deny", HeaderPrefix: "X-Client-Cert-"}
	if a == nil || !equalClientAuth(*a, want) {
		t.Errorf("defaults: %+v, want %+v", a, want)
	}
	want = ClientAuth{Line: 8, CAFile: f.dir + "/ca.pem", Mode: "optional", VerifyDepth: 2, Revocation: "leaf",
		CRLFiles: []string{f.dir + "/clients.crl", f.dir + "/clients.der"}, OCSP: true, OCSPResponder: "http://127.0.0.1:2560/",
		RevocationUnknown: "allow", HeaderPrefix: "X-Mtls-", RequirePaths: []string{"/admin/", "/api"}}
	if b == nil || !equalClientAuth(*b, want) {
		t.Errorf("all keys: %+v, want %+v", b, want)
	}
	if c.Sites[2].ClientAuth != nil {
		t.Errorf("site without [site.client_auth]: %+v", c.Sites[2].ClientAuth)
	}
	for _, want := range []string{
		"  client certificates: required, CAs in " + f.dir + "/ca.pem, verify depth 1, revocation off, identity headers X-Client-Cert-*\n",
		"  client certificates: optional (required under /admin/, /api), CAs in " + f.dir + "/ca.pem, verify depth 2, revocation leaf (2 CRL files, OCSP http://127.0.0.1:2560/; unknown: allow), identity headers X-Mtls-*\n",
	} {
		if !strings.Contains(c.Summary(), want) {
			t.Errorf("summary lacks %q:\n%s", want, c.Summary())
		}
	}
}

func equalClientAuth(a, b ClientAuth) bool {
	return slices.Equal(a.CRLFiles, b.CRLFiles) && slices.Equal(a.RequirePaths, b.RequirePaths) &&
		a.Line == b.Line && a.CAFile == b.CAFile && a.Mode == b.Mode && a.VerifyDepth == b.VerifyDepth &&
		a.Revocation == b.Revocation && a.CRLFetch == b.CRLFetch && a.OCSP == b.OCSP &&
		a.OCSPResponder == b.OCSPResponder && a.RevocationUnknown == b.RevocationUnknown && a.HeaderPrefix == b.HeaderPrefix
}

// TestClientAuthErrors: each bad [site.client_auth] is refused at its
// file, line and key.
func TestClientAuthErrors(t *testing.T) {
	f := newFixture(t)
	f.writeCRL(t, "clients.crl", true)
	crl, err := os.ReadFile(filepath.Join(f.dir, "clients.crl"))
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "cut.crl", string(crl)+"-----BEGIN X509 CRL-----\nMIIBKjCB0gIBATAKBggqhkjOPQQDAjAVMRMwEQYD\n", 0o644)
	pki := newClientPKI(t)
	f.write(t, "with-client.pem", pki.leafPEM, 0o644)
	f.write(t, "inter-only.pem", pki.interPEM, 0o644)
	const site = "[[site]]\nnames = [\"a.example\"]\n[site.client_auth]\n" // client_auth keys start at line 4
	tests := []struct{ name, config, want string }{
		{"no ca", site + `mode = "optional"`, `tlspilot.toml:3: site[1].client_auth.ca: required`},
		{"ca missing", site + `ca = "nope.pem"`, `tlspilot.toml:4: site[1].client_auth.ca: ` + f.dir + `/nope.pem does not exist`},
		{"ca not PEM", site + `ca = "tsig.secret"`, `tlspilot.toml:4: site[1].client_auth.ca: ` + f.dir + `/tsig.secret holds no PEM certificate`},
		{"ca holds a client certificate", site + `ca = "with-client.pem"`, `tlspilot.toml:4: site[1].client_auth.ca: client_auth: ca ` + f.dir + `/with-client.pem: certificate "CN=bob.example"`},
		{"chain, ca without the root", site + "ca = \"inter-only.pem\"\nrevocation = \"chain\"\ncrl = \"clients.crl\"",
			`tlspilot.toml:4: site[1].client_auth.ca: client_auth: ca ` + f.dir + `/inter-only.pem: revocation "chain": the issuer of CA "CN=clients intermediate" is not in ca`},
		{"crl cut short", site + "ca = \"ca.pem\"\ncrl = \"cut.crl\"", `tlspilot.toml:5: site[1].client_auth.crl: crl file: crl ` + f.dir + `/cut.crl: PEM block 2 at byte `},
		{"mode", site + "ca = \"ca.pem\"\nmode = \"required\"", `tlspilot.toml:5: site[1].client_auth.mode: "required": want "require" or "optional"`},
		{"depth type", site + "ca = \"ca.pem\"\nverify_depth = \"2\"", `tlspilot.toml:5: site[1].client_auth.verify_depth: want an integer, not a string`},
		{"depth negative", site + "ca = \"ca.pem\"\nverify_depth = -1", `tlspilot.toml:5: site[1].client_auth.verify_depth: -1: want the number of CA certificates`},
		{"revocation value", site + "ca = \"ca.pem\"\nrevocation = \"all\"\nocsp = true", `tlspilot.toml:5: site[1].client_auth.revocation: "all": want "off", "leaf" or "chain"`},
		{"revocation without source", site + "ca = \"ca.pem\"\nrevocation = \"chain\"", `tlspilot.toml:5: site[1].client_auth.revocation: "chain" needs a source`},
		{"off with source", site + "ca = \"ca.pem\"\nrevocation = \"off\"\ncrl_fetch = true", `tlspilot.toml:5: site[1].client_auth.revocation: "off", yet crl, crl_fetch or ocsp is given`},
		{"crl not a CRL", site + "ca = \"ca.pem\"\ncrl = [\"clients.crl\", \"ca.pem\"]", `tlspilot.toml:5: site[1].client_auth.crl[2]: ` + f.dir + `/ca.pem: a PEM "CERTIFICATE" block, want "X509 CRL"`},
		{"crl DER garbage", site + "ca = \"ca.pem\"\ncrl = \"tsig.secret\"", `tlspilot.toml:5: site[1].client_auth.crl: ` + f.dir + `/tsig.secret is not a CRL (PEM or DER)`},
		{"crl missing", site + "ca = \"ca.pem\"\ncrl = \"gone.crl\"", `tlspilot.toml:5: site[1].client_auth.crl: ` + f.dir + `/gone.crl does not exist`},
		{"crl_fetch type", site + "ca = \"ca.pem\"\ncrl_fetch = \"yes\"", `tlspilot.toml:5: site[1].client_auth.crl_fetch: want true or false, not a string`},
		{"responder without ocsp", site + "ca = \"ca.pem\"\nocsp_responder = \"http://ocsp.example/\"", `tlspilot.toml:5: site[1].client_auth.ocsp_responder: used only with ocsp = true`},
		{"responder URL", site + "ca = \"ca.pem\"\nocsp = true\nocsp_responder = \"ocsp.example:2560\"", `tlspilot.toml:6: site[1].client_auth.ocsp_responder: "ocsp.example:2560": want an http:// (or https://) URL`},
		{"unknown policy", site + "ca = \"ca.pem\"\nocsp = true\nrevocation_unknown = \"soft\"", `tlspilot.toml:6: site[1].client_auth.revocation_unknown: "soft": want "deny"`},
		{"unknown policy, no source", site + "ca = \"ca.pem\"\nrevocation_unknown = \"allow\"", `tlspilot.toml:5: site[1].client_auth.revocation_unknown: used only with a source`},
		{"prefix without dash", site + "ca = \"ca.pem\"\nheader_prefix = \"X-Client\"", `tlspilot.toml:5: site[1].client_auth.header_prefix: "X-Client": want header name characters ending with "-"`},
		{"prefix bad characters", site + "ca = \"ca.pem\"\nheader_prefix = \"X Client-\"", `tlspilot.toml:5: site[1].client_auth.header_prefix: "X Client-": want header name characters`},
		{"prefix too short", site + "ca = \"ca.pem\"\nheader_prefix = \"x-\"", `tlspilot.toml:5: site[1].client_auth.header_prefix: "x-" would also remove forwarding headers`},
		{"require_paths with require", site + "ca = \"ca.pem\"\nrequire_paths = [\"/admin/\"]", `tlspilot.toml:5: site[1].client_auth.require_paths: used only with mode = "optional"`},
		{"require_paths relative", site + "ca = \"ca.pem\"\nmode = \"optional\"\nrequire_paths = [\"/a/\",\n \"admin/\"]", `tlspilot.toml:7: site[1].client_auth.require_paths[2]: "admin/": a path starts with "/"`},
		{"unknown key", site + "ca = \"ca.pem\"\nverify_dept = 2", `tlspilot.toml:5: site[1].client_auth.verify_dept: unknown key (did you mean "verify_depth"?)`},
		{"plain HTTP too", "[[site]]\nnames = [\"a.example\"]\nhttp_redirect = false\n[site.client_auth]\nca = \"ca.pem\"",
			`tlspilot.toml:4: site[1].client_auth: client certificates need HTTPS`},
		{"not a table", "[[site]]\nnames = [\"a.example\"]\nclient_auth = \"ca.pem\"", `tlspilot.toml:3: site[1].client_auth: want a table, not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil {
				t.Fatalf("accepted, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// clientPKI is a root, an intermediate it issued and a client
// certificate it issued (CA:FALSE), as PEM.
type clientPKI struct {
	rootPEM, interPEM, leafPEM string
}

// newClientPKI makes a clientPKI.
func newClientPKI(t *testing.T) clientPKI {
	t.Helper()
	rootKey, interKey, leafKey := testKey(t), testKey(t), testKey(t)
	caTmpl := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	root := testCert(t, caTmpl(1, "clients root"), nil, &rootKey.PublicKey, rootKey)
	inter := testCert(t, caTmpl(2, "clients intermediate"), root, &interKey.PublicKey, rootKey)
	leaf := testCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "bob.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, root, &leafKey.PublicKey, rootKey)
	return clientPKI{rootPEM: pemCert(root), interPEM: pemCert(inter), leafPEM: pemCert(leaf)}
}

// testKey returns a new P-256 key.
func testKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// testCert has parent (nil: tmpl itself) sign tmpl for pub with key.
func testCert(t *testing.T, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pemCert is c as a PEM block.
func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// TestClientAuthCAFiles: what ca and crl files serve takes, check takes
// too: in chain mode an intermediate with its root, a self-signed client
// certificate pinned in ca (as OpenSSL and nginx take it), a crl file
// that also holds the CA certificate (OpenSSL skips the other blocks).
func TestClientAuthCAFiles(t *testing.T) {
	f := newFixture(t)
	pki := newClientPKI(t)
	f.write(t, "chain.pem", pki.interPEM+pki.rootPEM, 0o644)
	key := testKey(t)
	pinned := testCert(t, &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "pinned.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, nil, &key.PublicKey, key)
	f.write(t, "pinned.pem", pemCert(pinned), 0o644)
	f.writeCRL(t, "clients.crl", true)
	crl, err := os.ReadFile(filepath.Join(f.dir, "clients.crl"))
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "ca-and-crl.pem", pki.rootPEM+string(crl), 0o644)
	for _, text := range []string{
		"ca = \"chain.pem\"\nrevocation = \"chain\"\ncrl = \"clients.crl\"",
		"ca = \"pinned.pem\"\nrevocation = \"chain\"\ncrl = \"clients.crl\"",
		"ca = \"ca.pem\"\ncrl = \"ca-and-crl.pem\"",
	} {
		if _, err := f.parse(t, "[[site]]\nnames = [\"a.example\"]\n[site.client_auth]\n"+text); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
}
