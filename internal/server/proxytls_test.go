package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
)

// TestProxyTLSPrivateCA: an https:// upstream whose certificate a
// private CA issued for a host name, reached by address, is refused
// (502) unless the proxy trusts that CA (ProxyTLS.CAFile) and looks for
// that name (ProxyTLS.ServerName), which is also what it sends in SNI;
// the system's roots are not trusted beside the CA file. Routes have
// their own settings.
func TestProxyTLSPrivateCA(t *testing.T) {
	upCert := newTestCert(t, "app.internal")
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{upCert.tls}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	up := []string{"https://" + l.Addr().String()}
	other := newTestCert(t, "app.internal")

	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Cert: c.source(), Proxy: up,
		Routes: []Route{
			{Path: "/ca-only/", Proxy: up, ProxyTLS: ProxyTLS{CAFile: upCert.certFile}},
			{Path: "/name-only/", Proxy: up, ProxyTLS: ProxyTLS{ServerName: "app.internal"}},
			{Path: "/other-ca/", Proxy: up, ProxyTLS: ProxyTLS{CAFile: other.certFile, ServerName: "app.internal"}},
			{Path: "/both/", Proxy: up, ProxyTLS: ProxyTLS{CAFile: upCert.certFile, ServerName: "app.internal"}},
		}}}}, c)
	hc := ts.client(t, false)
	for path, want := range map[string]int{"/": 502, "/ca-only/": 502, "/name-only/": 502, "/other-ca/": 502, "/both/": 200} {
		resp, err := hc.Get("https://a.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
		if want == 200 && string(body) != "sni=app.internal" {
			t.Errorf("%s: upstream saw %q, want SNI app.internal", path, body)
		}
	}
}

// TestProxyTLSBadCAFile: a CA file that is gone or holds no certificate
// when the site is compiled is an error, not a proxy that trusts the
// system's roots instead.
func TestProxyTLSBadCAFile(t *testing.T) {
	notPEM := t.TempDir() + "/ca.pem"
	writeFile(t, notPEM, "not a certificate\n")
	for _, ca := range []string{notPEM, t.TempDir() + "/missing.pem"} {
		_, err := newProxy([]string{"https://" + net.JoinHostPort("127.0.0.1", "1")}, ProxyTLS{CAFile: ca},
			proxyHeaders{}, nil, upstreamIdentity{}, &proxyEnv{})
		if err == nil {
			t.Errorf("CA file %s: no error", ca)
		}
	}
}
