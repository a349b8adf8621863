package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
	"github.com/tlspilot/tlspilot/internal/tempcert"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// keptCert is a certificate for names, as the kept ones are (Leaf set).
func keptCert(t *testing.T, ca *testenv.OpenSSLCA, dns, ips []string) *tls.Certificate {
	t.Helper()
	ic := ca.Issue(testenv.IssueOptions{CommonName: "kept", DNSNames: dns, IPAddresses: ips})
	kp, err := tls.LoadX509KeyPair(ic.ChainFile, ic.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &kp
}

// TestTrialKeptCertRevoked: a certificate a reload kept serving for its
// old names (acmeSide.keepServing) that the OCSP responder then reports
// revoked is served no more. Before, the stapler's report reached only
// the Manager, which no longer has that certificate (NoteRevoked: not
// in service), so serve went on presenting a revoked certificate (a
// compromised key, perhaps) until it expired or the new order succeeded.
func TestTrialKeptCertRevoked(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "kept"})
	c := keptCert(t, ca, []string{"a.example.test", "b.example.test"}, nil)
	a := &acmeSide{log: slog.New(slog.DiscardHandler)}
	a.prev.Store(&map[string][]*tls.Certificate{"a.example.test": {c}, "b.example.test": {c}})
	hello := &tls.ClientHelloInfo{ServerName: "a.example.test", SupportedVersions: []uint16{tls.VersionTLS13},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256}}
	if a.previous(hello) != c {
		t.Fatal("the kept certificate is not served before its revocation")
	}
	revokedHook(a, slog.New(slog.DiscardHandler))(context.Background(), c.Leaf, time.Now())
	if a.previous(hello) != nil {
		t.Error("a kept certificate reported revoked is still served")
	}
}

// TestTrialKeptCertIPName: a kept certificate for an IP address (asked
// for without SNI, the Manager looks the local address up) is served as
// the kept ones for host names are. Before, previous looked only at the
// SNI, so such a site got the temporary certificate after a reload that
// changed its names.
func TestTrialKeptCertIPName(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "kept"})
	c := keptCert(t, ca, nil, []string{"127.0.0.1"})
	a := &acmeSide{log: slog.New(slog.DiscardHandler)}
	a.prev.Store(&map[string][]*tls.Certificate{"127.0.0.1": {c}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hello := &tls.ClientHelloInfo{Conn: conn, SupportedVersions: []uint16{tls.VersionTLS13},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256}}
	if a.previous(hello) != c {
		t.Error("the certificate kept for 127.0.0.1 is not served to a client without SNI")
	}
}

// TestTrialKeptCertRevokedBeforeReload: a reload that changes a site's
// names while the Manager's certificate for it is revoked (reported so,
// its replacement not obtained yet) does not keep that certificate for
// the old names. Before, keepServing kept whatever the Manager served,
// and the revoked certificate went on being presented after the Manager
// had let it go, until the order of the new names succeeded, for ever
// if it kept failing.
func TestTrialKeptCertRevokedBeforeReload(t *testing.T) {
	e := newEnv(t)
	www := filepath.Join(e.dir, "www")
	site := func(names string) string {
		return fmt.Sprintf("[[site]]\nnames = [%s]\nroot = %q\nchallenge = \"tls-alpn-01\"\n", names, www)
	}
	e.config(site(`"a.example.test"`))
	cmd, _ := e.serveLogged()
	e.waitIssued("a.example.test", 60*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	ctx := context.Background()
	cfg, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	a := &acmeSide{log: slog.New(slog.DiscardHandler), adm: &adminListener{}, ntf: &hooks{}}
	if _, err := a.ensure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	m := a.manager()
	old := acmeCerts(cfg)
	if err := m.ManageCerts(ctx, old...); err != nil {
		t.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "a.example.test", SupportedVersions: []uint16{tls.VersionTLS13},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256}}
	c, err := m.GetCertificate(hello)
	if err != nil || tempcert.Is(c) {
		t.Fatalf("the stored certificate is not in service: %v", err)
	}
	if managed, err := m.NoteRevoked(ctx, c.Leaf, time.Now()); !managed || err != nil {
		t.Fatalf("NoteRevoked: managed %v, error %v", managed, err)
	}
	write(t, e.conf, strings.Replace(readFile(t, e.conf), `"a.example.test"`, `"a.example.test", "b.example.test"`, 1))
	cfg2, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	a.keepServing(old, acmeCerts(cfg2))
	if p := a.previous(hello); p != nil && p.Leaf.Equal(c.Leaf) {
		t.Error("the revoked certificate is kept for a.example.test after the reload")
	}
}

// TestTrialCheckerKeptWhenOnlyServingChanges: a reload that changes
// only what the server does with a verified client certificate
// (require_paths, header_prefix) keeps the site's revocation checker.
// Before, the checker's key covered the whole client_auth table, so such
// a reload made a new checker, the server saw another Verifier, and
// every client-auth connection open on the site was answered 421 (and
// its checks' caches were dropped), though its handshake had been
// checked exactly as the new rules would check it.
func TestTrialCheckerKeptWhenOnlyServingChanges(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	dir := t.TempDir()
	cert := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test"}})
	load := func(extra string) *config.Config {
		t.Helper()
		p := filepath.Join(dir, "tlspilot.toml")
		write(t, p, fmt.Sprintf("[[site]]\nnames = [\"a.test\"]\nredirect = \"https://b.test{uri}\"\ncert_file = %q\nkey_file = %q\n[site.client_auth]\nca = %q\ncrl = %q\nmode = \"optional\"\n%s",
			cert.CertFile, cert.KeyFile, ca.CertFile, ca.CRLFile, extra))
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	c := newClientAuths(slog.New(slog.DiscardHandler), nil)
	defer c.close()
	apply := func(cfg *config.Config) server.ClientVerifier {
		t.Helper()
		sites, settle, err := c.sites(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(true)
		return sites[0].ClientAuth.Verifier
	}
	first := apply(load("require_paths = [\"/admin\"]\n"))
	for _, extra := range []string{
		"require_paths = [\"/admin\", \"/billing\"]\n",
		"require_paths = [\"/admin\"]\nheader_prefix = \"X-Mtls-\"\n",
	} {
		if apply(load(extra)) != first {
			t.Errorf("%q: a new checker, though the handshake's checks did not change", extra)
		}
	}
	if apply(load("revocation_unknown = \"allow\"\n")) == first {
		t.Error("revocation_unknown changed: the old checker kept")
	}
}
