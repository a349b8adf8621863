package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestServeAdmin: the built binary serves /healthz, /status and /metrics
// on admin_listen, reporting the certificate it obtained from Pebble.
func TestServeAdmin(t *testing.T) {
	e := newEnv(t)
	e.config(fmt.Sprintf("[[site]]\nnames = [\"admin.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("admin.example.test", 60*time.Second)
	base := "http://" + e.admin
	c := &http.Client{Timeout: 10 * time.Second}

	code, body, _ := get(t, c, base+"/healthz")
	if code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	code, body, h := get(t, c, base+"/status")
	var rep tlspilot.StatusReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status: %d %s %v\n%s", code, h.Get("Content-Type"), err, body)
	}
	if rep.Status != "OK" || rep.Account == nil || rep.Account.CA != e.p.DirectoryURL || len(rep.Certificates) != 1 ||
		rep.Certificates[0].State != tlspilot.StateValid || strings.Join(rep.Certificates[0].Names, ",") != "admin.example.test" {
		t.Errorf("status document: %s", body)
	}
	id := rep.Certificates[0].ID
	code, body, _ = get(t, c, base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf("tlspilot_certificate_not_after_seconds{cert=%q,names=\"admin.example.test\"} %g", id, float64(rep.Certificates[0].NotAfter.Unix())),
		fmt.Sprintf("tlspilot_certificate_renewal_failures{cert=%q} 0", id),
		`tlspilot_renewals_total{result="success"} 1`,
		`tlspilot_acme_requests_total{code="201",endpoint="new-order"} 1`,
		`tlspilot_challenges_total{result="valid",type="http-01"} 1`,
		"process_resident_memory_bytes ",
		"tlspilot_connections_max ",
		"tlspilot_connections_open ",
		"tlspilot_accept_errors_total 0",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, lacks %q", code, want)
		}
	}
	if code, body, _ := get(t, c, base+"/"); code != 200 || !strings.Contains(body, "admin.example.test") {
		t.Errorf("GET /: %d %.300q", code, body)
	}
}

// TestServeAdminBusyPort: an admin port that cannot be bound is reported
// at the config line of admin_listen, and nothing is started.
func TestServeAdminBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, "storage = \""+dir+"/s\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n\nadmin_listen = \""+
		l.Addr().String()+"\"\n[[site]]\nnames = [\"a.example\"]\n")
	code, _, errOut := runCLI(t, "serve", "--config", path)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:5: admin_listen: cannot listen on "+l.Addr().String()) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "s")); err == nil {
		t.Error("storage was created although serve did not start")
	}
}

// TestServeAdminRemoteRefused: serve refuses a non-loopback admin
// address without admin_allow_remote, naming the key.
func TestServeAdminRemoteRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, "storage = \""+dir+"/s\"\nadmin_listen = \"0.0.0.0:2019\"\n[[site]]\nnames = [\"a.example\"]\n")
	code, _, errOut := runCLI(t, "serve", "--config", path)
	if code != 1 || !strings.Contains(errOut, `tlspilot.toml:2: admin_listen: "0.0.0.0:2019" is not a loopback address`) ||
		!strings.Contains(errOut, "admin_allow_remote = true") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
