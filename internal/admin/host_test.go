package admin_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/admin"
)

// TestHostCheck: a request naming a host other than an IP literal or
// localhost is refused on every path (403), so that a web page whose
// name an attacker points at 127.0.0.1 (DNS rebinding) cannot read the
// status or the profiles; loopback and IP clients are answered as before.
func TestHostCheck(t *testing.T) {
	url, _ := serveFake(t, fakeCert("web", nil))
	for _, host := range []string{"attacker.example", "attacker.example:2019", "127.0.0.1.nip.io", "localhost.attacker.example",
		"LOCALHOST.attacker.example:80", "xn--localhost-.example", "[::1].example"} {
		for _, path := range []string{"/status", "/", "/metrics", "/healthz", "/debug/pprof/goroutine?debug=1"} {
			code, body := getHost(t, url+path, host)
			if code != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d, want 403", path, host, code)
			}
			if strings.Contains(body, "web.example.test") || strings.Contains(body, "goroutine") {
				t.Errorf("GET %s with Host %s answered %.200q", path, host, body)
			}
		}
	}
	for _, host := range []string{strings.TrimPrefix(url, "http://"), "127.0.0.1", "localhost", "LocalHost:2019", "localhost.:2019",
		"[::1]:2019", "[::1]", "10.1.2.3:2019", "[fe80::1%25eth0]:2019"} {
		if code, body := getHost(t, url+"/status", host); code != http.StatusOK || !strings.Contains(body, "web.example.test") {
			t.Errorf("GET /status with Host %s: %d %.200q, want 200", host, code, body)
		}
	}
}

// TestHostCheckListen: the name the listener was configured with
// (admin_listen = "admin.internal:2019" with admin_allow_remote) is
// allowed in Host, in any case and on any port, and no other name is; a
// listener on every interface (":2019") or another address than loopback
// is open to the network already and takes any Host its scrapers use.
func TestHostCheckListen(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		listen        string
		allow, refuse []string
	}{
		{"admin.internal:2019", []string{"admin.internal:2019", "ADMIN.Internal.", "admin.internal:80", "127.0.0.1"},
			[]string{"other.internal:2019", "attacker.example", "internal"}},
		{":2019", []string{hostname, hostname + ":2019", "192.0.2.7:2019", "localhost", "node1.prometheus.svc"}, nil},
		{"0.0.0.0:2019", []string{hostname + ":2019", "node1.internal:2019"}, nil},
		{"192.0.2.7:2019", []string{"node1.internal"}, nil},
		{"127.0.0.1:2019", []string{"localhost"}, []string{"admin.internal", hostname}},
	} {
		rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("web", nil)}, nil)
		h, err := admin.New(admin.Options{Source: fakeSource{rep}, Listen: tt.listen})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		for _, host := range tt.allow {
			if code, _ := getHost(t, srv.URL+"/status", host); code != http.StatusOK {
				t.Errorf("listen %s: GET /status with Host %s: %d, want 200", tt.listen, host, code)
			}
		}
		for _, host := range tt.refuse {
			if code, _ := getHost(t, srv.URL+"/status", host); code != http.StatusForbidden {
				t.Errorf("listen %s: GET /status with Host %s: %d, want 403", tt.listen, host, code)
			}
		}
		srv.Close()
	}
}

// TestHostCheckNoListen: without Options.Listen only IP literals and
// localhost are allowed, not the machine's name.
func TestHostCheckNoListen(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveFake(t, fakeCert("web", nil))
	if code, _ := getHost(t, url+"/status", hostname); code != http.StatusForbidden {
		t.Errorf("GET /status with Host %s (the machine's name) and no Listen: %d, want 403", hostname, code)
	}
}

// TestHostCheckAdminHosts: the names of admin_hosts (what a reverse proxy
// in front of a loopback listener passes on in Host) are answered, in any
// case, with or without a port; other names still are not.
func TestHostCheckAdminHosts(t *testing.T) {
	rep := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{fakeCert("web", nil)}, nil)
	h, err := admin.New(admin.Options{Source: fakeSource{rep}, Listen: "127.0.0.1:2019", Hosts: []string{"status.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for host, want := range map[string]int{"status.example.test": http.StatusOK, "STATUS.example.test.:443": http.StatusOK,
		"127.0.0.1": http.StatusOK, "other.example.test": http.StatusForbidden} {
		if code, _ := getHost(t, srv.URL+"/status", host); code != want {
			t.Errorf("GET /status with Host %s: %d, want %d", host, code, want)
		}
	}
}
