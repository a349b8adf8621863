package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// mtls is a server with sites on one port that differ in client
// authentication, client certificates made by `openssl ca`, and an
// upstream recording the headers it gets.
type mtls struct {
	*testServer
	root, inter, other *testenv.OpenSSLCA
	alice              *testenv.IssuedCert // from root
	bob                *testenv.IssuedCert // from root's intermediate
	mallory            *testenv.IssuedCert // from another CA
	log                *syncBuffer
	up                 *headerRecorder
	revoked            *revokedSet // refused by verify.test's Verifier: bob from the start
}

// headerRecorder is an upstream keeping the headers of the last request.
type headerRecorder struct {
	mu   sync.Mutex
	last http.Header
}

func (rc *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.last = r.Header.Clone()
	rc.mu.Unlock()
	io.WriteString(w, "upstream")
}

func (rc *headerRecorder) headers() http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last
}

// The sites of newMTLS.
const (
	siteRequire = "auth.test"   // require, depth 1, proxy
	siteDeep    = "deep.test"   // require, depth 2, proxy
	siteOpen    = "open.test"   // no client auth, proxy, default site
	siteOpt     = "opt.test"    // optional, static, /admin/ needs a certificate
	siteOptPx   = "optpx.test"  // optional, proxy, header prefix X-Mtls-
	siteOther   = "other.test"  // require, the other CA
	siteVerify  = "verify.test" // require, with a Verifier refusing bob
)

func newMTLS(t *testing.T) *mtls {
	t.Helper()
	m := &mtls{log: &syncBuffer{}, up: &headerRecorder{}, revoked: &revokedSet{serials: map[string]bool{}}}
	m.root = testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients root"})
	m.inter = testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients intermediate", Parent: m.root})
	m.other = testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "someone else's CA"})
	m.alice = m.root.Issue(testenv.IssueOptions{CommonName: "alice", Client: true, DNSNames: []string{"alice.example"}, IPAddresses: []string{"192.0.2.7"}})
	m.bob = m.inter.Issue(testenv.IssueOptions{CommonName: "bob", Client: true})
	m.mallory = m.other.Issue(testenv.IssueOptions{CommonName: "mallory", Client: true})
	m.revoked.add(m.bob.Cert)
	up := startUpstream(t, m.up)
	proxy := []string{"http://" + up.addr}
	cert := newTestCert(t, siteRequire, siteDeep, siteOpen, siteOpt, siteOptPx, siteOther, siteVerify)
	rootCAs := []*x509.Certificate{m.root.Cert}
	site := func(name string, ca *ClientAuth) Site {
		return Site{Names: []string{name}, Proxy: proxy, HTTPRedirect: true, Cert: cert.source(), ClientAuth: ca}
	}
	opt := site(siteOpt, &ClientAuth{CAs: rootCAs, Optional: true, VerifyDepth: 1, RequirePaths: []string{"/admin/"}})
	opt.Proxy, opt.Root = nil, staticSite(t)
	writeFile(t, filepath.Join(opt.Root, "admin", "index.html"), "admin")
	open := site(siteOpen, nil)
	open.Default = true
	m.testServer = startServer(t, Options{Logger: slog.New(slog.NewTextHandler(m.log, nil)), Sites: []Site{
		site(siteRequire, &ClientAuth{CAs: rootCAs, VerifyDepth: 1}),
		site(siteDeep, &ClientAuth{CAs: rootCAs, VerifyDepth: 2}),
		open, opt,
		site(siteOptPx, &ClientAuth{CAs: rootCAs, Optional: true, VerifyDepth: 1, HeaderPrefix: "X-Mtls-"}),
		site(siteOther, &ClientAuth{CAs: []*x509.Certificate{m.other.Cert}, VerifyDepth: 1}),
		site(siteVerify, &ClientAuth{CAs: rootCAs, VerifyDepth: 2, Verifier: m.revoked}),
	}}, cert)
	return m
}

// revokedSet refuses the certificates added to it as revoked: fault
// injection for the Server's handling of a Verifier's refusal (the real
// revocation checks are internal/clientauth's, tested end to end in
// cmd/tlspilot).
type revokedSet struct {
	mu      sync.Mutex
	serials map[string]bool
}

func (v *revokedSet) add(c *x509.Certificate) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.serials[c.SerialNumber.String()] = true
}

func (v *revokedSet) remove(c *x509.Certificate) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.serials, c.SerialNumber.String())
}

type testRefusal struct{ reason string }

func (r *testRefusal) Error() string         { return "refused: " + r.reason }
func (r *testRefusal) RefusalReason() string { return r.reason }

func (v *revokedSet) Check(_ context.Context, chain []*x509.Certificate) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.serials[chain[0].SerialNumber.String()] {
		return fmt.Errorf("check: %w", &testRefusal{"revoked"})
	}
	return nil
}

// keyPair loads an issued certificate with its chain, as a client
// presents it.
func keyPair(t *testing.T, c *testenv.IssuedCert) *tls.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(c.ChainFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &kp
}

// always presents cert whatever CAs the server names (a Go client's
// Certificates would offer none to a server naming other CAs).
func always(cert *tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
}

// clientFor is an HTTPS client presenting cert (nil: none).
func (m *mtls) clientFor(t *testing.T, cert *tls.Certificate, h2 bool) *http.Client {
	t.Helper()
	c := m.client(t, h2)
	if cert != nil {
		c.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = always(cert)
	}
	return c
}

// do sends GET https://host/path with extra headers and returns the
// status (0 and the error if the request failed) and body.
func doGet(c *http.Client, host, path string, hdr ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = []string{hdr[i+1]} // as written: case variants too
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (m *mtls) refusals(site, reason string) uint64 {
	for _, r := range m.ClientAuthRefusals() {
		if r.Site == site && r.Reason == reason {
			return r.Count
		}
	}
	return 0
}

// TestClientAuthSites: sites on one port differ by SNI; a good client is
// accepted over HTTP/1.1 and HTTP/2 and its identity reaches the
// upstream; clients without or with a bad certificate are refused in
// the handshake, logged with subject, serial and reason, and counted.
func TestClientAuthSites(t *testing.T) {
	m := newMTLS(t)
	alice, bob, mallory := keyPair(t, m.alice), keyPair(t, m.bob), keyPair(t, m.mallory)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			code, body, err := doGet(m.clientFor(t, alice, h2), siteRequire, "/")
			if err != nil || code != 200 || body != "upstream" {
				t.Fatalf("alice on %s: %d %q %v", siteRequire, code, body, err)
			}
			h := m.up.headers()
			sum := sha256.Sum256(m.alice.Cert.Raw)
			want := map[string]string{
				"X-Client-Cert-Verify":             "SUCCESS",
				"X-Client-Cert-Subject":            "CN=alice",
				"X-Client-Cert-Issuer":             "CN=clients root",
				"X-Client-Cert-Serial":             strings.ToUpper(m.alice.Cert.SerialNumber.Text(16)),
				"X-Client-Cert-Fingerprint-Sha256": hex.EncodeToString(sum[:]),
				"X-Client-Cert-Sans":               "DNS:alice.example, IP:192.0.2.7",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("upstream got %s: %q, want %q", k, got, v)
				}
			}
			if _, _, err := doGet(m.clientFor(t, nil, h2), siteRequire, "/"); err == nil {
				t.Errorf("no certificate on %s: accepted", siteRequire)
			}
			if code, _, err := doGet(m.clientFor(t, nil, h2), siteOpen, "/"); err != nil || code != 200 {
				t.Errorf("no certificate on %s (no client auth, same port): %d %v", siteOpen, code, err)
			}
			if _, _, err := doGet(m.clientFor(t, mallory, h2), siteRequire, "/"); err == nil {
				t.Errorf("mallory (another CA) on %s: accepted", siteRequire)
			}
			if _, _, err := doGet(m.clientFor(t, bob, h2), siteRequire, "/"); err == nil {
				t.Errorf("bob (an intermediate's, depth 2) on %s (depth 1): accepted", siteRequire)
			}
			if code, _, err := doGet(m.clientFor(t, bob, h2), siteDeep, "/"); err != nil || code != 200 {
				t.Errorf("bob on %s (depth 2): %d %v", siteDeep, code, err)
			}
			if code, _, err := doGet(m.clientFor(t, alice, h2), siteVerify, "/"); err != nil || code != 200 {
				t.Errorf("alice on %s (Verifier accepts): %d %v", siteVerify, code, err)
			}
			if _, _, err := doGet(m.clientFor(t, bob, h2), siteVerify, "/"); err == nil {
				t.Errorf("bob on %s (Verifier refuses): accepted", siteVerify)
			}
		})
	}
	for _, c := range []struct {
		site, reason, subject string
	}{
		{siteRequire, ReasonNoCertificate, ""},
		{siteRequire, ReasonUntrusted, "CN=mallory"},
		{siteRequire, ReasonDepth, "CN=bob"},
		{siteVerify, "revoked", "CN=bob"},
	} {
		if n := m.refusals(c.site, c.reason); n != 2 {
			t.Errorf("refusals{%s,%s} = %d, want 2", c.site, c.reason, n)
		}
		line := fmt.Sprintf(`msg="client certificate refused" site=%s reason=%s`, c.site, c.reason)
		if c.subject != "" {
			line += ` subject="` + c.subject + `" serial=`
		}
		if !strings.Contains(m.log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, m.log)
		}
	}
	if n := m.refusals(siteRequire, ReasonExpired); n != 0 {
		t.Errorf("refusals{%s,expired} = %d, want a counter at 0", siteRequire, n)
	}
}

// TestClientAuthAlert: the refusal reaches the client as a TLS alert.
func TestClientAuthAlert(t *testing.T) {
	m := newMTLS(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		err := m.request(t, &tls.Config{ServerName: siteRequire, MaxVersion: v, InsecureSkipVerify: true}, siteRequire)
		if err == nil || !strings.Contains(err.Error(), "remote error: tls: bad certificate") {
			t.Errorf("TLS %x without a certificate: %v, want a bad_certificate alert", v, err)
		}
		err = m.request(t, &tls.Config{ServerName: siteRequire, MaxVersion: v, InsecureSkipVerify: true,
			GetClientCertificate: always(keyPair(t, m.mallory))}, siteRequire)
		if err == nil || !strings.Contains(err.Error(), "remote error: tls: bad certificate") {
			t.Errorf("TLS %x with an untrusted certificate: %v, want a bad_certificate alert", v, err)
		}
	}
}

// request makes one HTTP/1.1 request over a new TLS connection with
// conf, for Host host, and returns the error of the handshake or the
// request (nil for any answer).
func (m *mtls) request(t *testing.T, conf *tls.Config, host string) error {
	t.Helper()
	_, err := m.requestState(t, conf, host)
	return err
}

func (m *mtls) requestState(t *testing.T, conf *tls.Config, host string) (tls.ConnectionState, error) {
	t.Helper()
	conf = conf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", m.httpsAddr, conf)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return conn.ConnectionState(), err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return conn.ConnectionState(), err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return conn.ConnectionState(), fmt.Errorf("status %d", resp.StatusCode)
	}
	return conn.ConnectionState(), nil
}

// TestClientAuthForgedHeaders: identity headers sent by a client never
// reach an upstream, in any case, on sites with or without client auth;
// in optional mode without a certificate the upstream sees Verify NONE.
func TestClientAuthForgedHeaders(t *testing.T) {
	m := newMTLS(t)
	forged := []string{
		"X-Client-Cert-Subject", "CN=admin", "x-client-cert-verify", "SUCCESS", "X-CLIENT-CERT-SERIAL", "01",
		"X-Client-Cert-Whatever", "1", "X-Mtls-Subject", "CN=admin", "x-mtls-verify", "SUCCESS",
		// The same to a CGI-style upstream, where '_' and '-' are one.
		"X-Client-Cert_Subject", "CN=admin", "X_Client_Cert_Verify", "SUCCESS", "x_mtls_subject", "CN=admin",
	}
	alice := keyPair(t, m.alice)
	for _, c := range []struct {
		site   string
		cert   *tls.Certificate
		prefix string // of the headers the site sets
		verify string // want, "" for none
	}{
		{siteOpen, nil, "X-Client-Cert-", ""},
		{siteOpen, alice, "X-Client-Cert-", ""},
		{siteRequire, alice, "X-Client-Cert-", "SUCCESS"},
		{siteOptPx, nil, "X-Mtls-", "NONE"},
		{siteOptPx, alice, "X-Mtls-", "SUCCESS"},
	} {
		for _, h2 := range []bool{false, true} {
			code, _, err := doGet(m.clientFor(t, c.cert, h2), c.site, "/", forged...)
			if err != nil || code != 200 {
				t.Fatalf("%s: %d %v", c.site, code, err)
			}
			h := m.up.headers()
			if got := h.Get(c.prefix + "Verify"); got != c.verify {
				t.Errorf("%s (h2 %v, cert %v): %sVerify %q, want %q", c.site, h2, c.cert != nil, c.prefix, got, c.verify)
			}
			for k, v := range h {
				lk := strings.ReplaceAll(strings.ToLower(k), "_", "-")
				if !strings.HasPrefix(lk, "x-client-cert-") && !strings.HasPrefix(lk, "x-mtls-") {
					continue
				}
				ours := c.verify == "SUCCESS" && strings.HasPrefix(lk, strings.ToLower(c.prefix)) || c.verify == "NONE" && strings.EqualFold(k, c.prefix+"Verify")
				if !ours || strings.Contains(v[0], "admin") || v[0] == "01" || len(v) > 1 {
					t.Errorf("%s (h2 %v, cert %v): upstream got %s: %q", c.site, h2, c.cert != nil, k, v)
				}
			}
		}
	}
}

// TestClientAuthOptionalPaths: in optional mode, a client without a
// certificate gets in except under require_paths (403).
func TestClientAuthOptionalPaths(t *testing.T) {
	m := newMTLS(t)
	anon, alice := m.clientFor(t, nil, true), m.clientFor(t, keyPair(t, m.alice), true)
	for _, c := range []struct {
		client *http.Client
		path   string
		want   int
	}{
		{anon, "/hello.txt", 200}, {anon, "/admin/", 403}, {anon, "/admin", 403}, {anon, "/administrator", 404},
		{alice, "/hello.txt", 200}, {alice, "/admin/", 200},
		// The same place by other spellings (the file server cleans them).
		{anon, "//admin/", 403}, {anon, "/./admin/", 403}, {anon, "/%2e/admin/", 403}, {anon, "/x/../admin/", 403},
		{anon, "/admin//index.html", 403}, {anon, "/%61dmin/", 403},
	} {
		if code, _, err := doGet(c.client, siteOpt, c.path); err != nil || code != c.want {
			t.Errorf("%s (cert %v): %d %v, want %d", c.path, c.client == alice, code, err, c.want)
		}
	}
	if _, _, err := doGet(m.clientFor(t, keyPair(t, m.mallory), false), siteOpt, "/hello.txt"); err == nil {
		t.Errorf("optional mode: an untrusted certificate was accepted")
	}
}

// TestClientAuthWrongConnection: a request for a site with client auth
// on a connection made for another site, with or without SNI, is 421.
func TestClientAuthWrongConnection(t *testing.T) {
	m := newMTLS(t)
	for _, sni := range []string{siteOpen, ""} {
		err := m.request(t, &tls.Config{ServerName: sni, InsecureSkipVerify: true}, siteRequire)
		if err == nil || err.Error() != "status 421" {
			t.Errorf("SNI %q, Host %s: %v, want status 421", sni, siteRequire, err)
		}
	}
	// The same client with alice's certificate still reaches the open
	// site by its default: the check is about the site, not the client.
	conf := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: always(keyPair(t, m.alice))}
	if err := m.request(t, conf, siteOpen); err != nil {
		t.Errorf("no SNI, Host %s: %v", siteOpen, err)
	}
}

// anyTicket is a client session cache that offers its last session to
// every server name: what an attacker replaying a ticket across sites
// does.
type anyTicket struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (a *anyTicket) Get(string) (*tls.ClientSessionState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cs, a.cs != nil
}

func (a *anyTicket) Put(_ string, cs *tls.ClientSessionState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cs != nil {
		a.cs = cs
	}
}

// TestClientAuthSessionTickets: a session ticket never lets a client
// past another site's client auth. crypto/tls does not resume a session
// without a certificate on a site that requires one (the client then
// needs its certificate in a full handshake); a session with a
// certificate is checked again against the resuming site's CA.
func TestClientAuthSessionTickets(t *testing.T) {
	m := newMTLS(t)
	alice := *keyPair(t, m.alice)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := map[uint16]string{tls.VersionTLS12: "TLS1.2", tls.VersionTLS13: "TLS1.3"}[v]
		t.Run(name, func(t *testing.T) {
			conf := func(sni string, cache *anyTicket, certs ...tls.Certificate) *tls.Config {
				c := &tls.Config{ServerName: sni, InsecureSkipVerify: true, MaxVersion: v, ClientSessionCache: cache}
				if len(certs) > 0 {
					c.GetClientCertificate = always(&certs[0])
				}
				return c
			}
			// A ticket from the open site, no certificate in it.
			open := &anyTicket{}
			m.mustRequest(t, conf(siteOpen, open), siteOpen)
			if st, err := m.requestState(t, conf(siteOpen, open), siteOpen); err != nil || !st.DidResume {
				t.Fatalf("the open site's own ticket did not resume: %v (resumed %v)", err, st.DidResume)
			}
			if err := m.request(t, conf(siteRequire, open), siteRequire); err == nil {
				t.Errorf("the open site's ticket without a certificate got into %s", siteRequire)
			}
			st, err := m.requestState(t, conf(siteRequire, open, alice), siteRequire)
			if err != nil || st.DidResume {
				t.Errorf("alice with the open site's ticket on %s: %v (resumed %v), want a full handshake", siteRequire, err, st.DidResume)
			}
			// A ticket holding alice's certificate, verified for auth.test.
			withAlice := &anyTicket{}
			m.mustRequest(t, conf(siteRequire, withAlice, alice), siteRequire)
			if st, err := m.requestState(t, conf(siteRequire, withAlice), siteRequire); err != nil || !st.DidResume {
				t.Errorf("alice's ticket on its own site, no certificate offered: %v (resumed %v)", err, st.DidResume)
			}
			if st, err := m.requestState(t, conf(siteOther, withAlice), siteOther); err == nil || st.DidResume {
				t.Errorf("alice's ticket from %s on %s (another CA): %v (resumed %v), want refused", siteRequire, siteOther, err, st.DidResume)
			}
			// Revoked after the ticket was issued: refused on resumption.
			onVerify := &anyTicket{}
			m.mustRequest(t, conf(siteVerify, onVerify, alice), siteVerify)
			m.revoked.add(m.alice.Cert)
			defer m.revoked.remove(m.alice.Cert)
			if err := m.request(t, conf(siteVerify, onVerify), siteVerify); err == nil ||
				!strings.Contains(m.log.String(), `site=verify.test reason=revoked subject="CN=alice"`) {
				t.Errorf("alice's ticket on %s after her revocation: %v, want her refused", siteVerify, err)
			}
			if err := m.request(t, conf(siteOpen, withAlice), siteOpen); err != nil {
				t.Errorf("alice's ticket on the open site: %v, want a full handshake", err)
			}
		})
	}
}

func (m *mtls) mustRequest(t *testing.T, conf *tls.Config, host string) {
	t.Helper()
	if err := m.request(t, conf, host); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
}

// TestClientAuthCurl: curl with --cert/--key gets in; without, it is
// refused; over HTTP/1.1 and HTTP/2.
func TestClientAuthCurl(t *testing.T) {
	m := newMTLS(t)
	_, port, _ := net.SplitHostPort(m.httpsAddr)
	for _, proto := range []string{"--http1.1", "--http2"} {
		base := []string{"-sS", "-k", proto, "--resolve", siteRequire + ":" + port + ":127.0.0.1", "-H", "X-Client-Cert-Subject: CN=root"}
		url := "https://" + siteRequire + ":" + port + "/"
		out, err := exec.Command("curl", append(base, "--cert", m.alice.ChainFile, "--key", m.alice.KeyFile, url)...).CombinedOutput()
		if err != nil || string(out) != "upstream" {
			t.Errorf("curl %s with alice's certificate: %v: %s", proto, err, out)
		}
		if got := m.up.headers().Get("X-Client-Cert-Subject"); got != "CN=alice" {
			t.Errorf("curl %s: upstream got subject %q", proto, got)
		}
		out, err = exec.Command("curl", append(base, url)...).CombinedOutput()
		if err == nil {
			t.Errorf("curl %s without a certificate: accepted: %s", proto, out)
		}
	}
}

// TestTicketKeyRotation: a new key a day, seven kept, newest first.
func TestTicketKeyRotation(t *testing.T) {
	conf := &tls.Config{}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k, err := newTicketKeys(conf, start)
	if err != nil {
		t.Fatal(err)
	}
	first := k.keys[0]
	for _, c := range []struct {
		after time.Duration
		n     int
	}{{time.Hour, 1}, {23 * time.Hour, 1}, {24 * time.Hour, 2}, {36 * time.Hour, 2}, {48 * time.Hour, 3}} {
		if err := k.rotate(start.Add(c.after)); err != nil {
			t.Fatal(err)
		}
		if len(k.keys) != c.n || k.keys[len(k.keys)-1] != first {
			t.Errorf("after %v: %d keys (oldest first made: %v), want %d", c.after, len(k.keys), k.keys[len(k.keys)-1] == first, c.n)
		}
	}
	for day := 3; day <= 10; day++ {
		k.rotate(start.Add(time.Duration(day) * 24 * time.Hour))
	}
	if len(k.keys) != 7 || k.keys[len(k.keys)-1] == first || k.keys[0] == k.keys[1] {
		t.Errorf("after 10 days: %d keys, want 7 distinct without the first", len(k.keys))
	}
}

// TestClientAuthReloadAndProfile: client auth follows a reload both
// ways, and keeps the site's TLS profile (modern: TLS 1.3 only).
func TestClientAuthReloadAndProfile(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients"})
	alice := ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true})
	cert := newTestCert(t, "a.test")
	site := func(auth bool) []Site {
		s := Site{Names: []string{"a.test"}, Root: staticSite(t), HTTPRedirect: true, Cert: cert.source(), TLSProfile: tlsprofile.Modern}
		if auth {
			s.ClientAuth = &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1}
		}
		return []Site{s}
	}
	ts := startServer(t, Options{Sites: site(true)}, cert)
	m := &mtls{testServer: ts}
	conf := func(v uint16, c *testenv.IssuedCert) *tls.Config {
		tc := &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}
		if c != nil {
			tc.GetClientCertificate = always(keyPair(t, c))
		}
		return tc
	}
	check := func(step string, v uint16, c *testenv.IssuedCert, ok bool) {
		t.Helper()
		if err := m.request(t, conf(v, c), "a.test"); (err == nil) != ok {
			t.Errorf("%s, TLS %x, certificate %v: %v, want ok %v", step, v, c != nil, err, ok)
		}
	}
	check("require", tls.VersionTLS13, alice, true)
	check("require", tls.VersionTLS13, nil, false)
	check("require, modern profile", tls.VersionTLS12, alice, false)
	if err := ts.Reload(site(false)); err != nil {
		t.Fatal(err)
	}
	check("reloaded without client auth", tls.VersionTLS13, nil, true)
	check("reloaded without client auth, modern profile", tls.VersionTLS12, nil, false)
	if err := ts.Reload(site(true)); err != nil {
		t.Fatal(err)
	}
	check("reloaded with client auth", tls.VersionTLS13, nil, false)
	check("reloaded with client auth", tls.VersionTLS13, alice, true)
	bad := site(true)
	bad[0].HTTPRedirect = false
	if err := ts.Reload(bad); err == nil {
		t.Error("client auth with HTTPRedirect false: reload accepted")
	}
}

// TestClientAuthNoSNIByAddress: without SNI, a site named by the local
// address is chosen in the handshake, with its client auth; a request
// for a site with client auth that the handshake did not choose is 421.
func TestClientAuthNoSNIByAddress(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients"})
	alice := ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true})
	cert := newTestCert(t, "127.0.0.1", "192.0.2.1", "open.test")
	auth := func() *ClientAuth { return &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1} }
	root := staticSite(t)
	ts := startServer(t, Options{Sites: []Site{
		{Names: []string{"127.0.0.1"}, Root: root, HTTPRedirect: true, Cert: cert.source(), ClientAuth: auth()},
		{Names: []string{"192.0.2.1"}, Root: root, HTTPRedirect: true, Cert: cert.source(), ClientAuth: auth()},
		{Names: []string{"open.test"}, Default: true, Root: root, HTTPRedirect: true, Cert: cert.source()},
	}}, cert)
	m := &mtls{testServer: ts}
	withCert := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: always(keyPair(t, alice))}
	if err := m.request(t, withCert, "127.0.0.1"); err != nil {
		t.Errorf("no SNI, the local address's site, alice: %v", err)
	}
	if err := m.request(t, &tls.Config{InsecureSkipVerify: true}, "127.0.0.1"); err == nil {
		t.Error("no SNI, the local address's site (client auth), no certificate: accepted")
	}
	if err := m.request(t, withCert, "192.0.2.1"); err == nil || err.Error() != "status 421" {
		t.Errorf("no SNI on 127.0.0.1, Host of the 192.0.2.1 site: %v, want status 421", err)
	}
	if err := m.request(t, &tls.Config{ServerName: "open.test", InsecureSkipVerify: true}, "127.0.0.1"); err == nil || err.Error() != "status 421" {
		t.Errorf("SNI open.test, Host 127.0.0.1: %v, want status 421", err)
	}
}
