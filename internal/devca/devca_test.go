package devca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// get GETs url with a client that trusts roots and returns the body of a
// 200 OK answer.
func get(t *testing.T, roots *x509.CertPool, url string) []byte {
	t.Helper()
	body, err := tryGet(t, roots, url)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// tryGet is get returning the error.
func tryGet(t *testing.T, roots *x509.CertPool, url string) ([]byte, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, err
}

func TestStart(t *testing.T) {
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "77")
	var requests atomic.Int32
	c, err := Start(t.Context(), Options{Handler: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			h.ServeHTTP(w, r)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := os.Getenv("PEBBLE_WFE_NONCEREJECT"); got != "77" {
		t.Errorf("PEBBLE_WFE_NONCEREJECT = %q after Start, want it restored to 77", got)
	}

	if dir := get(t, c.Roots, c.DirectoryURL); !strings.Contains(string(dir), `"newOrder"`) {
		t.Errorf("directory has no newOrder: %s", dir)
	}
	if requests.Load() != 1 {
		t.Errorf("wrapper saw %d requests, want 1", requests.Load())
	}
	checkIssuerRoot(t, c)
	if err := queryA(t.Context(), "tcp", c.DNSAddr); err != nil {
		t.Errorf("DNS: %v", err)
	}

	c.Close()
	c.Close() // idempotent
	if _, err := tryGet(t, c.Roots, c.DirectoryURL); err == nil {
		t.Errorf("GET %s after Close succeeded", c.DirectoryURL)
	}
	if err := queryA(t.Context(), "tcp", c.DNSAddr); err == nil {
		t.Errorf("DNS answers after Close")
	}
}

// checkIssuerRoot checks that IssuerRootsPEM is a CA certificate and the
// one the management interface serves.
func checkIssuerRoot(t *testing.T, c *CA) {
	t.Helper()
	rootPEM, err := c.IssuerRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		t.Fatalf("IssuerRootsPEM: no PEM block in %q", rootPEM)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !root.IsCA {
		t.Fatalf("IssuerRootsPEM: not a CA certificate (%v)", err)
	}
	if served := get(t, c.Roots, c.ManagementURL+"/roots/0"); string(served) != string(rootPEM) {
		t.Errorf("IssuerRootsPEM differs from the management interface's /roots/0")
	}
	if _, err := c.IssuerRoots(); err != nil {
		t.Errorf("IssuerRoots: %v", err)
	}
}

func TestStartKeepEnv(t *testing.T) {
	opts := Options{NonceReject: -1, KeepEnv: true}
	if c, err := Start(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "KeepEnv") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Start with KeepEnv and the environment unset: err = %v, want a KeepEnv error", err)
	}
	for _, kv := range opts.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestStartWithDNS(t *testing.T) {
	dns, err := StartDNS(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	c, err := Start(t.Context(), Options{DNS: dns})
	if err != nil {
		t.Fatal(err)
	}
	if c.DNSAddr != dns.Addr || c.DNS != dns.Srv {
		t.Errorf("CA uses DNS %s, want the given %s", c.DNSAddr, dns.Addr)
	}
	c.Close()
	if err := queryA(t.Context(), "udp", dns.Addr); err != nil {
		t.Errorf("the given DNS server stopped with the CA: %v", err)
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "PEBBLE_VA_NOSLEEP=1 PEBBLE_VA_ALWAYS_VALID= PEBBLE_WFE_NONCEREJECT=20 PEBBLE_AUTHZREUSE=0"},
		{Options{NonceReject: -1, AuthzReuse: -1, Sleep: true}, "PEBBLE_VA_NOSLEEP= PEBBLE_VA_ALWAYS_VALID= PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE="},
		{Options{NonceReject: 50, AuthzReuse: 100}, "PEBBLE_VA_NOSLEEP=1 PEBBLE_VA_ALWAYS_VALID= PEBBLE_WFE_NONCEREJECT=50 PEBBLE_AUTHZREUSE=100"},
	}
	for _, tt := range tests {
		if got := strings.Join(tt.opts.Env(), " "); got != tt.want {
			t.Errorf("%+v: Env() = %q, want %q", tt.opts, got, tt.want)
		}
	}
}
