package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// getOnReused sends GET https://a.test/hello.txt with c and returns the
// status (0 if the request failed) and whether it went on a connection
// opened before.
func getOnReused(t *testing.T, c *http.Client) (status int, reused bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://a.test/hello.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := c.Do(req)
	if err != nil {
		return 0, reused
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is kept
	resp.Body.Close()
	return resp.StatusCode, reused
}

// TestTrialReloadClientAuthOnOpenConnections: a reload that makes a
// site's client authentication stricter (added, a CA replaced, optional
// made required) applies to the keep-alive and HTTP/2 connections open
// before it: their handshake was checked under the old rules, so a
// request on them is answered 421 and the client reconnects, giving a
// certificate the new rules accept. Before, such a connection kept
// reaching a site that now requires a client certificate without any,
// for as long as the client kept it open. A reload that leaves the
// client authentication as it was does not disturb them.
func TestTrialReloadClientAuthOnOpenConnections(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients"})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "other clients"})
	alice := keyPair(t, ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true}))
	cert := newTestCert(t, "a.test")
	root := staticSite(t)
	site := func(auth *ClientAuth, hsts bool) []Site {
		return []Site{{Names: []string{"a.test"}, Root: root, HTTPRedirect: true, HSTS: hsts, Cert: cert.source(), ClientAuth: auth}}
	}
	require := func(c *testenv.OpenSSLCA) *ClientAuth {
		return &ClientAuth{CAs: []*x509.Certificate{c.Cert}, VerifyDepth: 1}
	}
	optional := &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1, Optional: true}
	tests := []struct {
		name        string
		before      *ClientAuth
		after       *ClientAuth
		withCert    bool
		stillServed bool
	}{
		{"client auth added", nil, require(ca), false, false},
		{"CA replaced", require(ca), require(other), true, false},
		{"optional made required", optional, require(ca), false, false},
		{"unchanged", require(ca), require(ca), true, true},
		{"removed", require(ca), nil, true, true},
	}
	for _, tt := range tests {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/h2=%v", tt.name, h2), func(t *testing.T) {
				ts := startServer(t, Options{Sites: site(tt.before, false)}, cert)
				m := &mtls{testServer: ts}
				var c *http.Client
				if tt.withCert {
					c = m.clientFor(t, alice, h2)
				} else {
					c = m.clientFor(t, nil, h2)
				}
				if st, _ := getOnReused(t, c); st != http.StatusOK {
					t.Fatalf("before the reload: status %d", st)
				}
				if err := ts.Reload(site(tt.after, true)); err != nil {
					t.Fatal(err)
				}
				st, reused := getOnReused(t, c)
				switch {
				case tt.stillServed && (st != http.StatusOK || !reused):
					t.Errorf("after the reload: status %d (reused connection %v), want 200 on the same connection", st, reused)
				case !tt.stillServed && st == http.StatusOK:
					t.Errorf("after the reload: a connection checked under the old rules still gets 200 (reused connection %v)", reused)
				}
			})
		}
	}
}

// TestTrialReloadProfileOnOpenConnections: a reload that moves a site to
// the modern TLS profile (TLS 1.3 only) applies to the TLS 1.2
// connections open before it: a request on one is answered 421, and the
// client's new handshake is held to the new profile. Before, they kept
// being served over TLS 1.2. Connections the new profile allows are not
// disturbed.
func TestTrialReloadProfileOnOpenConnections(t *testing.T) {
	cert := newTestCert(t, "a.test")
	root := staticSite(t)
	site := func(p tlsprofile.Profile) []Site {
		return []Site{{Names: []string{"a.test"}, Root: root, HTTPRedirect: true, Cert: cert.source(), TLSProfile: p}}
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/h2=%v", tls.VersionName(version), h2), func(t *testing.T) {
				ts := startServer(t, Options{Sites: site(tlsprofile.Intermediate)}, cert)
				c := ts.client(t, h2)
				c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = version
				if st, _ := getOnReused(t, c); st != http.StatusOK {
					t.Fatalf("before the reload: status %d", st)
				}
				if err := ts.Reload(site(tlsprofile.Modern)); err != nil {
					t.Fatal(err)
				}
				st, reused := getOnReused(t, c)
				switch {
				case version == tls.VersionTLS13 && (st != http.StatusOK || !reused):
					t.Errorf("TLS 1.3 after the reload: status %d (reused connection %v), want 200 on the same connection", st, reused)
				case version == tls.VersionTLS12 && st == http.StatusOK:
					t.Errorf("TLS 1.2 after the reload to modern: still 200 (reused connection %v)", reused)
				}
			})
		}
	}
}
