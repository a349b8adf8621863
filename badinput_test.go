package tlspilot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

func TestNormalizeName(t *testing.T) {
	cases := []struct {
		in, want string
		errHas   string
	}{
		{"Example.COM", "example.com", ""},
		{"example.com.", "example.com", ""},
		{" www.example.com ", "www.example.com", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"*.Example.com", "*.example.com", ""},
		{"127.0.0.1", "127.0.0.1", ""},
		{"[2001:DB8::1]", "2001:db8::1", ""},
		{"", "", "empty"},
		{"   ", "", "empty"},
		{"localhost", "", "fully qualified"},
		{strings.Repeat("a", 64) + ".example.com", "", "invalid"},
		{strings.Repeat("abcdefghi.", 26) + "com", "", "invalid"},
		{"a.*.example.com", "", "wildcard"},
		{"*example.com", "", "wildcard"},
		{"exa mple.com", "", "invalid"},
		{"under_score.example.com", "", "invalid"},
		{"xn--a.example.com", "", "invalid"},
		{"-lead.example.com", "", "invalid"},
		{"a..b.example.com", "", "invalid"},
		{"ex\x00ample.com", "", "invalid"},
	}
	for _, tc := range cases {
		got, err := NormalizeName(tc.in)
		if tc.errHas != "" {
			if err == nil || !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("NormalizeName(%q) = %q, %v; want an ErrBadName error mentioning %q", tc.in, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestBadInputPlacesNoOrder: every kind of bad input is refused with a
// clear error, and the CA sees no order.
func TestBadInputPlacesNoOrder(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	m := startManager(t, p, testConfig(t, p, nil))
	ctx := context.Background()
	cases := []struct {
		cert   Cert
		errHas string
	}{
		{Cert{}, "no names"},
		{Cert{Names: []string{""}}, "empty name"},
		{Cert{Names: []string{strings.Repeat("a", 250) + ".test"}}, "invalid name"},
		{Cert{Names: []string{"bad_name.example.test"}}, "invalid name"},
		{Cert{Names: []string{"*.example.test"}}, "wildcard *.example.test needs the dns-01 challenge"},
		{Cert{Names: []string{"ok.example.test"}, KeyTypes: []KeyType{"dsa1024"}}, `unknown key type "dsa1024"`},
		{Cert{Names: []string{"ok.example.test"}, Challenge: "carrier-pigeon-01"}, `unknown challenge "carrier-pigeon-01"`},
		{Cert{Names: []string{"ok.example.test", "bad..example.test"}}, "invalid name"},
	}
	for _, tc := range cases {
		err := m.ManageCerts(ctx, tc.cert)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("ManageCerts(%+v) = %v, want an error containing %q", tc.cert, err, tc.errHas)
		}
	}
	// A name claimed by two certificates is refused too.
	if err := m.Manage(ctx, "dup.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(ctx, "other.example.test", "DUP.example.test"); err == nil || !strings.Contains(err.Error(), "already managed") {
		t.Errorf("duplicate name: %v", err)
	}
	waitServing(t, m, 30*time.Second)
	if got := p.Orders(); got != 1 {
		t.Errorf("orders = %d, want 1 (only dup.example.test)", got)
	}
	if st := m.Status(); len(st) != 1 || st[0].Names[0] != "dup.example.test" {
		t.Errorf("status = %+v", st)
	}
	// A name nobody configured gets no certificate.
	if _, err := m.GetCertificate(helloFor("unknown.example.test")); err == nil {
		t.Error("a certificate was served for a name nobody configured")
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		cfg    Config
		errHas string
	}{
		{Config{CA: "http://ca.example/dir"}, "https://"},
		{Config{CA: "not a url"}, "https://"},
		{Config{KeyTypes: []KeyType{"ecdsa-p521"}}, "unknown key type"},
		{Config{Challenge: "http-02"}, "unknown challenge"},
		{Config{Storage: nilStorage{}}, "KeyFile is required"},
	}
	for _, tc := range cases {
		if tc.cfg.StorageDir == "" && tc.cfg.Storage == nil {
			tc.cfg.StorageDir = t.TempDir()
		}
		_, err := New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.errHas)
		}
	}
}

// nilStorage is a storage that is never used: New must fail before.
type nilStorage struct{ storageStub }

// TestHTTP01Tokens: malformed tokens are refused before any lookup, and
// nothing but a stored answer is ever returned.
func TestHTTP01Tokens(t *testing.T) {
	m, err := New(context.Background(), Config{CA: "https://127.0.0.1:1/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("next")) })
	srv := httptest.NewServer(m.HTTPHandler(next))
	defer srv.Close()
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/", 200, "next"},
		{"/.well-known/acme-challenge/", 400, ""},
		{"/.well-known/acme-challenge/abc+def", 400, ""},
		{"/.well-known/acme-challenge/abc%2F..%2F..%2Fkek", 400, ""},
		{"/.well-known/acme-challenge/..%2Fkek", 400, ""},
		{"/.well-known/acme-challenge/abc=", 400, ""},
		{"/.well-known/acme-challenge/" + strings.Repeat("A", 129), 400, ""},
		{"/.well-known/acme-challenge/" + strings.Repeat("A", 43), 404, ""},
	}
	for _, tc := range cases {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 64)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.body != "" && string(body[:n]) != tc.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, resp.StatusCode, body[:n], tc.code, tc.body)
		}
	}
}

// TestManageCertsAllOrNothing: a ManageCerts call refused for a name that
// two of its certificates share, or that another certificate manages
// already, manages none of them (the first ones used to stay registered
// for handshakes, unmanaged, and refused a later call), and says which.
func TestManageCertsAllOrNothing(t *testing.T) {
	ctx := t.Context()
	m, err := New(ctx, Config{CA: "https://127.0.0.1:1/dir", StorageDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	err = m.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}}, Cert{Names: []string{"b.example.test", "A.example.test"}})
	if err == nil || !strings.Contains(err.Error(), "a.example.test is in two of the certificates given, [a.example.test] and [b.example.test a.example.test]") {
		t.Errorf("overlap within one call: %v", err)
	}
	if err := m.Manage(ctx, "other.example.test"); err != nil {
		t.Fatal(err)
	}
	err = m.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}}, Cert{Names: []string{"c.example.test", "other.example.test"}})
	if err == nil || !strings.Contains(err.Error(), "other.example.test is already managed with [other.example.test]") {
		t.Errorf("overlap with a managed name: %v", err)
	}
	if _, err := m.GetCertificate(helloFor("a.example.test")); err == nil {
		t.Error("a.example.test is served after both refused calls")
	}
	if err := m.ManageCerts(ctx, Cert{Names: []string{"a.example.test"}}, Cert{Names: []string{"b.example.test"}}); err != nil {
		t.Errorf("managing the refused names alone: %v", err)
	}
}
