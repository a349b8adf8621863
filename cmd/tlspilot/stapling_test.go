package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// sClientStatus runs `openssl s_client -status` against serve for name
// and returns its output.
func sClientStatus(t *testing.T, addr, name string) string {
	t.Helper()
	cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", name, "-status")
	cmd.Stdin = strings.NewReader("") // EOF: s_client closes after the handshake
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// waitStaple runs s_client until serve staples a response for name.
func waitStaple(t *testing.T, addr, name string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := sClientStatus(t, addr, name)
		if strings.Contains(out, "OCSP Response Status: successful") {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no staple for %s after 60 s:\n%s", name, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeOCSPStapling (issue 14, items 3 and 4): serve with a cert_file
// site whose certificate, from an `openssl ca` CA, names an `openssl
// ocsp` responder; a second whose certificate the responder reports
// revoked; a third with ocsp_stapling = false; and a Pebble-managed site
// (no OCSP URL). `openssl s_client -status` sees the staple on the first
// only; the revoked certificate is reported; the managed one gets no
// staple and nothing is logged about it; /metrics shows the staple's age
// and next refresh. After a restart with the responder stopped, the
// staple comes from storage.
func TestServeOCSPStapling(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "stapling root"})
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "stapling CA", Parent: root})
	good := ca.Issue(testenv.IssueOptions{CommonName: "ocsp.example.test", DNSNames: []string{"ocsp.example.test", "nostaple.example.test"}})
	bad := ca.Issue(testenv.IssueOptions{CommonName: "revoked.example.test", DNSNames: []string{"revoked.example.test"}})
	ca.Revoke(bad.CertFile, "keyCompromise")
	ca.StartOCSP(testenv.OCSPResponderOptions{})

	e := newEnv(t)
	e.config(fmt.Sprintf(`
[[site]]
names = ["ocsp.example.test"]
root = %[1]q
cert_file = %[2]q
key_file = %[3]q

[[site]]
names = ["nostaple.example.test"]
root = %[1]q
cert_file = %[2]q
key_file = %[3]q
ocsp_stapling = false

[[site]]
names = ["revoked.example.test"]
root = %[1]q
cert_file = %[4]q
key_file = %[5]q

[[site]]
names = ["managed.example.test"]
root = %[1]q
`, e.dir+"/www", good.ChainFile, good.KeyFile, bad.ChainFile, bad.KeyFile))
	cmd, out := e.serveLogged()
	e.waitIssued("managed.example.test", 60*time.Second)

	got := waitStaple(t, e.https, "ocsp.example.test")
	if !strings.Contains(got, "Cert Status: good") {
		t.Errorf("staple for ocsp.example.test:\n%s", got)
	}
	for _, name := range []string{"nostaple.example.test", "managed.example.test"} {
		if got := sClientStatus(t, e.https, name); !strings.Contains(got, "OCSP response: no response sent") {
			t.Errorf("%s: a staple, or no s_client status line:\n%s", name, got)
		}
	}
	waitCount(t, out, "a revoked certificate serve does not renew", 1)
	if got := sClientStatus(t, e.https, "revoked.example.test"); !strings.Contains(got, "OCSP response: no response sent") {
		t.Errorf("revoked.example.test stapled:\n%s", got)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		ocspLine := strings.Contains(line, "ocsp stapling") || strings.Contains(line, "ocsp response") || strings.Contains(line, "ocsp cache")
		problem := strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")
		if ocspLine && !strings.Contains(line, "revoked") || problem && strings.Contains(line, "managed.example.test") {
			t.Errorf("logged: %s", line)
		}
	}
	metrics := adminMetrics(t, e.admin)
	for _, want := range []string{`tlspilot_ocsp_staple_age_seconds{name="ocsp.example.test",serial="` + good.Cert.SerialNumber.Text(16) + `"}`,
		`tlspilot_ocsp_staple_next_refresh_timestamp_seconds{name="ocsp.example.test"`,
		`tlspilot_ocsp_staple_fetch_failures_total{name="ocsp.example.test",serial="` + good.Cert.SerialNumber.Text(16) + `"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `tlspilot_ocsp_staple_age_seconds{name="managed.example.test"`) {
		t.Error("/metrics has a staple age for the managed certificate")
	}
	rep := adminStatus(t, e.admin)
	var staple *tlspilot.StapleStatus
	for i, st := range rep.OCSPStaples {
		if st.Serial == good.Cert.SerialNumber.Text(16) {
			staple = &rep.OCSPStaples[i]
		}
		if slices.Contains(st.Names, "managed.example.test") {
			t.Errorf("/status has a staple for the managed certificate: %+v", st)
		}
	}
	if staple == nil || !staple.Stapling || staple.Status != "good" || staple.ThisUpdate.IsZero() || staple.NextRefresh.IsZero() || staple.Failures != 0 {
		t.Errorf("/status ocsp_staples: %+v", rep.OCSPStaples)
	}

	// A restart with the responder down: the staple comes from storage.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	ca.StopOCSP()
	_, out2 := e.serveLogged()
	got = waitStaple(t, e.https, "ocsp.example.test")
	if !strings.Contains(got, "Cert Status: good") {
		t.Errorf("staple after the restart:\n%s", got)
	}
	if strings.Contains(out2.String(), "responder unavailable") {
		t.Errorf("the restarted serve asked the stopped responder:\n%s", out2.String())
	}
}

// adminStatus returns /status of the admin listener, checked against
// docs/status.schema.json.
func adminStatus(t *testing.T, addr string) tlspilot.StatusReport {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := statusSchema(t).Validate(doc); err != nil {
		t.Errorf("/status does not follow docs/status.schema.json: %v\n%s", err, b)
	}
	var rep tlspilot.StatusReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// adminMetrics returns the text of /metrics on the admin listener.
func adminMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
