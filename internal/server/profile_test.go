package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// newRSATestCert is newTestCert with an RSA 2048 key, for the
// ECDHE-RSA suites.
func newRSATestCert(t testing.TB, name string) *testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	c := &testCert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf: leaf,
		certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	writeFile(t, c.certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, c.keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	return c
}

// tempManager is a real ACME Manager that has not obtained anything: it
// serves its temporary self-signed certificate for the names given.
func tempManager(t *testing.T, names ...string) *tlspilot.Manager {
	t.Helper()
	m, err := tlspilot.New(t.Context(), tlspilot.Config{CA: "https://127.0.0.1:9/directory", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := m.Manage(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// offer is one client attempt: a protocol version and a single suite.
type offer struct {
	version uint16
	suite   *tls.CipherSuite
}

func (o offer) String() string { return tls.VersionName(o.version) + " " + o.suite.Name }

// allOffers lists every (version, suite) pair crypto/tls knows, secure
// and insecure, TLS 1.0 to 1.3.
func allOffers() []offer {
	var out []offer
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		for _, v := range s.SupportedVersions {
			out = append(out, offer{v, s})
		}
	}
	return out
}

// accepts tries one offer against addr with a real client: crypto/tls
// up to TLS 1.2 (one suite offered), openssl s_client for each TLS 1.3
// suite (crypto/tls offers all three together).
func accepts(t *testing.T, addr, name string, o offer) bool {
	t.Helper()
	if o.version == tls.VersionTLS13 {
		return opensslAccepts(t, addr, name, "-tls1_3", "-ciphersuites", o.suite.Name) == o.suite.Name
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: name, InsecureSkipVerify: true,
		MinVersion: o.version, MaxVersion: o.version, CipherSuites: []uint16{o.suite.ID},
	})
	if err != nil {
		return false
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	if cs.Version != o.version || cs.CipherSuite != o.suite.ID {
		t.Errorf("%s %s: negotiated %s %s", name, o, tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
	}
	return true
}

// opensslAccepts runs openssl s_client with args and returns the suite
// it negotiated, "" when the handshake failed.
func opensslAccepts(t *testing.T, addr, name string, args ...string) string {
	t.Helper()
	args = append([]string{"s_client", "-connect", addr, "-servername", name, "-brief"}, args...)
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "Ciphersuite:"); ok {
			return strings.TrimSpace(s)
		}
	}
	t.Fatalf("openssl %v succeeded without naming a suite:\n%s", args, out)
	return ""
}

// want is the set a profile accepts for a certificate key algorithm.
func want(p tlsprofile.Profile, keyAlg string) []string {
	out := []string{"TLS 1.3 TLS_AES_128_GCM_SHA256", "TLS 1.3 TLS_AES_256_GCM_SHA384", "TLS 1.3 TLS_CHACHA20_POLY1305_SHA256"}
	if p == tlsprofile.Intermediate {
		for _, id := range p.CipherSuites() {
			if n := tls.CipherSuiteName(id); strings.Contains(n, "_"+keyAlg+"_") {
				out = append(out, "TLS 1.2 "+n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// walk tries every offer against one name and compares the accepted set.
func walk(t *testing.T, addr, name string, p tlsprofile.Profile, keyAlg string) {
	t.Helper()
	var got []string
	for _, o := range allOffers() {
		if accepts(t, addr, name, o) {
			got = append(got, o.String())
		}
	}
	slices.Sort(got)
	if w := want(p, keyAlg); !slices.Equal(got, w) {
		t.Errorf("%s (%s, %s certificate) accepts\n  %s\nwant\n  %s", name, p, keyAlg,
			strings.Join(got, "\n  "), strings.Join(w, "\n  "))
	}
}

// TestTLSProfiles walks every protocol version and cipher suite Go knows
// against sites of both profiles, with ECDSA and RSA certificates from
// each certificate source (a GetCertificate function, files, and a real
// Manager's temporary certificate), and against the Manager's own
// TLSConfig.
func TestTLSProfiles(t *testing.T) {
	type tc struct {
		name    string
		profile tlsprofile.Profile
		keyAlg  string
	}
	var sites []Site
	var cases []tc
	m := tempManager(t, "i-temp.test", "m-temp.test", "lib-temp.test")
	for _, p := range []tlsprofile.Profile{tlsprofile.Intermediate, tlsprofile.Modern} {
		prefix := string(p[0])
		for _, keyAlg := range []string{"ECDSA", "RSA"} {
			for _, src := range []string{"func", "files"} {
				name := fmt.Sprintf("%s-%s-%s.test", prefix, strings.ToLower(keyAlg), src)
				c := newTestCert(t, name)
				if keyAlg == "RSA" {
					c = newRSATestCert(t, name)
				}
				s := Site{Names: []string{name}, Cert: c.source(), TLSProfile: p}
				if src == "files" {
					s.Cert = c.files()
				}
				if p == tlsprofile.Intermediate && src == "func" {
					s.TLSProfile = "" // the default
				}
				sites, cases = append(sites, s), append(cases, tc{name, p, keyAlg})
			}
		}
		name := prefix + "-temp.test"
		sites = append(sites, Site{Names: []string{name}, Cert: CertSource{GetCertificate: m.GetCertificate}, TLSProfile: p})
		cases = append(cases, tc{name, p, "ECDSA"})
	}
	ts := startServer(t, Options{Sites: sites})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			walk(t, ts.httpsAddr, c.name, c.profile, c.keyAlg)
		})
	}
	// The library's own listeners: a site's, and the one renew and certs
	// open on the https port to answer tls-alpn-01.
	for name, cfg := range map[string]*tls.Config{"Manager.TLSConfig": m.TLSConfig(), "Manager.ChallengeTLSConfig": m.ChallengeTLSConfig()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			walk(t, tlsListener(t, cfg), "lib-temp.test", tlsprofile.Intermediate, "ECDSA")
		})
	}
}

// tlsListener accepts TLS connections with cfg on a loopback port until
// the test ends, completes each handshake and closes it; it returns the
// address.
func tlsListener(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// TestOpenSSLCBCRefused is the reproduction: a TLS 1.2 client
// offering only a CBC suite gets no handshake, on every certificate
// source; the same client offering an AEAD suite does.
func TestOpenSSLCBCRefused(t *testing.T) {
	e, r := newTestCert(t, "e.test"), newRSATestCert(t, "r.test")
	m := tempManager(t, "temp.test")
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"e.test"}, Cert: e.files()},
		{Names: []string{"r.test"}, Cert: r.source()},
		{Names: []string{"temp.test"}, Cert: CertSource{GetCertificate: m.GetCertificate}},
	}})
	for name, alg := range map[string]string{"e.test": "ECDSA", "r.test": "RSA", "temp.test": "ECDSA"} {
		if s := opensslAccepts(t, ts.httpsAddr, name, "-tls1_2", "-cipher", "ECDHE-"+alg+"-AES128-SHA"); s != "" {
			t.Errorf("%s: openssl -tls1_2 -cipher ECDHE-%s-AES128-SHA completed a handshake with %s", name, alg, s)
		}
		if s := opensslAccepts(t, ts.httpsAddr, name, "-tls1_2", "-cipher", "ECDHE-"+alg+"-AES128-GCM-SHA256"); s != "ECDHE-"+alg+"-AES128-GCM-SHA256" {
			t.Errorf("%s: openssl -tls1_2 -cipher ECDHE-%s-AES128-GCM-SHA256 negotiated %q", name, alg, s)
		}
	}
}
