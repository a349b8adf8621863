package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/clientauth"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestServeClientAuth (issue 14, items 1 and 2): serve with sites on
// one port, one requiring client certificates from an `openssl ca` CA
// and checking a CRL file, the other asking for none. A good client gets
// through and its identity reaches the upstream, never the client's own
// X-Client-Cert-* headers; a client revoked in the CRL, one without a
// certificate and one from another CA are refused in the handshake, with
// a log line naming the reason; a client revoked while serve runs is
// refused once the CRL file is rewritten, without a reload. A third site
// asks the OCSP responder (`openssl ocsp`) named in the certificates: a
// good client passes, a revoked one is refused.
func TestServeClientAuth(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients CA"})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "another CA"})
	srvCert := ca.Issue(testenv.IssueOptions{CommonName: "mtls.test", DNSNames: []string{"mtls.test", "open.test", "ocsp.test"}, NoOCSP: true, NoCRL: true})
	alice := ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true, NoOCSP: true, NoCRL: true})
	bob := ca.Issue(testenv.IssueOptions{CommonName: "bob", Client: true, NoOCSP: true, NoCRL: true})
	mallory := other.Issue(testenv.IssueOptions{CommonName: "mallory", Client: true, NoOCSP: true, NoCRL: true})
	carol := ca.Issue(testenv.IssueOptions{CommonName: "carol", Client: true, NoCRL: true}) // OCSP URL in her AIA
	dave := ca.Issue(testenv.IssueOptions{CommonName: "dave", Client: true, NoCRL: true})
	ca.Revoke(bob.CertFile, "keyCompromise")
	ca.Revoke(carol.CertFile, "")
	ca.StartOCSP(testenv.OCSPResponderOptions{})

	var mu sync.Mutex
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)

	h := newServingHalf(t)
	h.config(fmt.Sprintf("storage = %q\n", filepath.Join(h.dir, "storage")), fmt.Sprintf(`[[site]]
names = ["mtls.test"]
proxy = %q
cert_file = %q
key_file = %q
[site.client_auth]
ca = %q
crl = [%q]

[[site]]
names = ["open.test"]
proxy = %q
cert_file = %q
key_file = %q

[[site]]
names = ["ocsp.test"]
proxy = %q
cert_file = %q
key_file = %q
[site.client_auth]
ca = %q
ocsp = true
revocation_unknown = "deny"
`, up.URL, srvCert.CertFile, srvCert.KeyFile, ca.CertFile, ca.CRLFile, up.URL, srvCert.CertFile, srvCert.KeyFile,
		up.URL, srvCert.CertFile, srvCert.KeyFile, ca.CertFile))
	admin := freeAddr(t)
	write(t, h.conf, strings.Replace(readFile(t, h.conf), `admin_listen = "off"`, fmt.Sprintf("admin_listen = %q", admin), 1))
	cmd, out := h.serve(nil)

	get := func(host string, c *testenv.IssuedCert) (string, error) {
		conf := &tls.Config{ServerName: host, InsecureSkipVerify: true}
		if c != nil {
			kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
		}
		for _, h2 := range []bool{false, true} {
			tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: h2,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, h.https)
				}}
			if !h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/", nil)
			req.Header.Set("X-Client-Cert-Subject", "CN=root")
			req.Header.Set("x-client-cert-verify", "SUCCESS")
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			tr.CloseIdleConnections()
			if err != nil {
				return "", err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "upstream" {
				return "", fmt.Errorf("status %d %q", resp.StatusCode, b)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return got.Get("X-Client-Cert-Subject") + "|" + got.Get("X-Client-Cert-Verify"), nil
	}

	if id, err := get("mtls.test", alice); err != nil || id != "CN=alice|SUCCESS" {
		t.Errorf("alice on mtls.test: %q %v, want her identity upstream", id, err)
	}
	if id, err := get("open.test", nil); err != nil || id != "|" {
		t.Errorf("no certificate on open.test: %q %v, want through with no identity header", id, err)
	}
	for _, c := range []struct {
		name   string
		cert   *testenv.IssuedCert
		reason string
	}{{"bob (revoked)", bob, "revoked"}, {"no certificate", nil, "no_certificate"}, {"mallory (another CA)", mallory, "untrusted"}} {
		if _, err := get("mtls.test", c.cert); err == nil {
			t.Errorf("%s on mtls.test: accepted", c.name)
		}
		if !logged(out, "reason="+c.reason) {
			t.Errorf("%s: no log line with reason=%s:\n%s", c.name, c.reason, out)
		}
	}
	if !logged(out, `msg="client certificate refused" site=mtls.test reason=revoked subject="CN=bob" serial=`+bob.Cert.SerialNumber.Text(16)) {
		t.Errorf("no log line naming bob's subject and serial:\n%s", out)
	}

	if id, err := get("ocsp.test", dave); err != nil || id != "CN=dave|SUCCESS" {
		t.Errorf("dave on ocsp.test (OCSP good): %q %v", id, err)
	}
	if _, err := get("ocsp.test", carol); err == nil || !logged(out, `site=ocsp.test reason=revoked subject="CN=carol"`) {
		t.Errorf("carol on ocsp.test (OCSP revoked): %v, want refused as revoked:\n%s", err, out)
	}

	refused := map[string]uint64{}
	for _, r := range adminStatus(t, admin).ClientAuth {
		refused[r.Site+" "+r.Reason] = r.Count
	}
	for _, k := range []string{"mtls.test revoked", "mtls.test no_certificate", "mtls.test untrusted", "ocsp.test revoked"} {
		if refused[k] == 0 {
			t.Errorf("/status client_auth: no refusal counted for %s: %v", k, refused)
		}
	}

	// Restarted with the responder down, serve (whose sites all have
	// cert_file, so it obtains nothing from a CA) answers from the OCSP
	// answers it kept in its storage.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", h.https, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve did not stop on SIGTERM")
		}
	}
	ca.StopOCSP()
	_, out = h.serve(nil)
	if id, err := get("ocsp.test", dave); err != nil || id != "CN=dave|SUCCESS" {
		t.Errorf("dave on ocsp.test after a restart with the responder down: %q %v, want the stored answer used:\n%s", id, err, out)
	}

	ca.Revoke(alice.CertFile, "")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := get("mtls.test", alice); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice still accepted a minute after the CRL file revoked her:\n%s", out)
		}
	}
}

// logged waits until serve's output holds s, which serve writes before
// its alert leaves but the test reads from a pipe: true if it shows
// within 10 seconds.
func logged(out *syncBuffer, s string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(out.String(), s) {
			return true
		}
	}
	return false
}

// TestClientAuthCheckersAcrossReloads: a site whose client_auth did not
// change keeps its checker (and its caches) across a reload, also when
// its table moved in the file; a changed one gets a new checker; a
// refused reload keeps the running ones.
func TestClientAuthCheckersAcrossReloads(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	dir := t.TempDir()
	cert := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test"}})
	load := func(before, extra string) *config.Config {
		t.Helper()
		p := filepath.Join(dir, "tlspilot.toml")
		write(t, p, fmt.Sprintf("%s[[site]]\nnames = [\"a.test\"]\nredirect = \"https://b.test{uri}\"\ncert_file = %q\nkey_file = %q\n[site.client_auth]\nca = %q\ncrl = %q\n%s",
			before, cert.CertFile, cert.KeyFile, ca.CertFile, ca.CRLFile, extra))
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	c := newClientAuths(slog.New(slog.DiscardHandler), nil)
	defer c.close()
	running := func() *clientauth.Checker {
		t.Helper()
		if len(c.checkers) != 1 {
			t.Fatalf("%d checkers, want 1", len(c.checkers))
		}
		for _, chk := range c.checkers {
			return chk
		}
		return nil
	}
	apply := func(cfg *config.Config, ok bool) {
		t.Helper()
		sites, settle, err := c.sites(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sites[0].ClientAuth == nil || sites[0].ClientAuth.Verifier == nil {
			t.Fatalf("site without its client auth: %+v", sites[0].ClientAuth)
		}
		settle(ok)
	}
	apply(load("", ""), true)
	first := running()
	apply(load("# moved down\n\n", ""), true)
	if running() != first {
		t.Error("unchanged client_auth: a new checker")
	}
	apply(load("", "revocation_unknown = \"allow\"\n"), false)
	if running() != first {
		t.Error("refused reload: the running checker was replaced")
	}
	apply(load("", "revocation_unknown = \"allow\"\n"), true)
	if running() == first {
		t.Error("changed client_auth: the old checker kept")
	}
}
