package server

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// TestTrialReload421ClosesConnection: a connection answered 421 because
// its handshake was checked under rules the site no longer has (client
// authentication added, a TLS version the profile now refuses) is of no
// more use to that site, so the answer closes it (Connection: close,
// GOAWAY in HTTP/2). Before, it stayed open: a client that does not
// retry a 421 on a new connection itself (Go's, curl) kept sending its
// requests on it, each answered 421, for as long as it kept it open.
func TestTrialReload421ClosesConnection(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "clients"})
	alice := keyPair(t, ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true}))
	cert := newTestCert(t, "a.test")
	root := staticSite(t)
	site := func(auth *ClientAuth, p tlsprofile.Profile) []Site {
		return []Site{{Names: []string{"a.test"}, Root: root, HTTPRedirect: true, Cert: cert.source(), ClientAuth: auth, TLSProfile: p}}
	}
	require := &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1}
	tests := []struct {
		name       string
		after      []Site
		tls12      bool
		wantNextOK bool // the request after the 421 is served
	}{
		{"client auth added", site(require, tlsprofile.Intermediate), false, true},
		{"TLS version raised", site(nil, tlsprofile.Modern), true, false},
	}
	for _, tt := range tests {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/h2=%v", tt.name, h2), func(t *testing.T) {
				ts := startServer(t, Options{Sites: site(nil, tlsprofile.Intermediate)}, cert)
				c := (&mtls{testServer: ts}).clientFor(t, alice, h2)
				if tt.tls12 {
					c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = 0x0303
				}
				if st, _ := getOnReused(t, c); st != http.StatusOK {
					t.Fatalf("before the reload: status %d", st)
				}
				if err := ts.Reload(tt.after); err != nil {
					t.Fatal(err)
				}
				if st, reused := getOnReused(t, c); st != http.StatusMisdirectedRequest || !reused {
					t.Fatalf("first request after the reload: status %d (reused %v), want 421 on the old connection", st, reused)
				}
				st, reused := getOnReused(t, c)
				if reused {
					t.Errorf("the request after the 421 went on the same connection again (status %d)", st)
				}
				if tt.wantNextOK && st != http.StatusOK {
					t.Errorf("the request after the 421: status %d, want 200 on a new connection", st)
				}
				if !tt.wantNextOK && st != 0 {
					t.Errorf("the request after the 421: status %d, want the TLS 1.2 handshake refused", st)
				}
			})
		}
	}
}
