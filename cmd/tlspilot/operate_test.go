package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// runBinary runs the built tlspilot with args and returns its exit code
// and output.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// statusSchema compiles docs/status.schema.json.
func statusSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "status.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("status.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// status runs `tlspilot status --json`, checks the document against the
// documented schema and returns it with the exit code.
func status(t *testing.T, schema *jsonschema.Schema, conf string) (tlspilot.StatusReport, int) {
	t.Helper()
	code, out, errOut := runBinary(t, "status", "--json", "--config", conf)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("status --json printed no JSON (exit %d): %v\n%s%s", code, err, out, errOut)
	}
	if err := schema.Validate(doc); err != nil {
		t.Fatalf("status --json does not follow docs/status.schema.json: %v\n%s", err, out)
	}
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != code {
		t.Errorf("exit code %d, document says %d", code, r.ExitCode)
	}
	return r, code
}

// waitUntil sleeps until t.
func waitUntil(at time.Time) { time.Sleep(time.Until(at)) }

// TestStatusWalk: a certificate from Pebble valid for 60 s, the CA stopped
// after issuance: `tlspilot status` walks valid (0) → failing (1, after a
// renewal that cannot reach the CA) → expiring (1) → expired (2); an
// unreadable storage or config is UNKNOWN (3). Every --json document
// follows the documented schema; the table says the same.
func TestStatusWalk(t *testing.T) {
	e := newEnvWith(t, testenv.PebbleOptions{Validity: 60 * time.Second})
	conf := e.config(fmt.Sprintf("[[site]]\nnames = [\"walk.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	schema := statusSchema(t)

	if r, code := status(t, schema, conf); code != tlspilot.ExitWarning || len(r.Certificates) != 1 || r.Certificates[0].State != tlspilot.StatePending {
		t.Fatalf("before the first start (no storage yet): exit %d, %+v (%s); want 1 and one pending certificate", code, r.Certificates, r.Error)
	}
	serve := e.serve()
	e.waitIssued("walk.example.test", 30*time.Second)
	r, code := status(t, schema, conf)
	c := r.Certificates[0]
	if code != tlspilot.ExitOK || c.State != tlspilot.StateValid || c.Serial == "" || c.NotAfter.IsZero() || r.Account == nil || r.Account.State != "valid" {
		t.Fatalf("after issuance: exit %d, %+v, account %+v", code, c, r.Account)
	}
	if code, out, _ := runBinary(t, "status", "--config", conf); code != 0 || !strings.HasPrefix(out, "OK: 1 valid") || !strings.Contains(out, c.Serial) {
		t.Errorf("status table (exit %d):\n%s", code, out)
	}
	_ = serve.Process.Signal(os.Interrupt)
	_ = serve.Wait()
	e.p.Close()

	code, out, errOut := runBinary(t, "renew", "--force", "--config", conf)
	if code != 1 {
		t.Fatalf("renew --force with the CA stopped: exit %d, want 1\n%s%s", code, out, errOut)
	}
	r, code = status(t, schema, conf)
	c = r.Certificates[0]
	if code != tlspilot.ExitWarning || c.State != tlspilot.StateFailing || c.Attempts != 1 || c.LastError == "" {
		t.Fatalf("after a failed renewal: exit %d, %+v", code, c)
	}
	// The failure is told once, on the certificate's line, then counted.
	if n := strings.Count(out+errOut, c.LastError); n != 1 || !strings.Contains(out, c.ID+": failed: "+c.LastError) ||
		!strings.HasSuffix(errOut, "tlspilot renew: 1 of 1 certificates not renewed: 1 failed, 0 waiting to retry after a failed attempt\n") {
		t.Errorf("renew's output tells the failure %d times, want once on its line and a count at the end:\n%s%s", n, out, errOut)
	}
	// A certificate held back until its retry is not renewed: exit 1,
	// so that `renew || alert` from cron alerts.
	if code, out, errOut := runBinary(t, "renew", "--config", conf); code != 1 || !strings.Contains(out, "waiting to retry") ||
		!strings.Contains(errOut, "1 of 1 certificates not renewed: 0 failed, 1 waiting to retry") {
		t.Errorf("renew while the certificate waits to retry: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if code, out, _ := runBinary(t, "status", "--config", conf); code != 1 || !strings.HasPrefix(out, "WARNING: 1 failing") || !strings.Contains(out, c.LastError) {
		t.Errorf("status table (exit %d) does not show the failure in full:\n%s", code, out)
	}
	waitUntil(c.WarnFrom.Add(time.Second))
	if r, code = status(t, schema, conf); code != tlspilot.ExitWarning || r.Certificates[0].State != tlspilot.StateExpiring {
		t.Fatalf("inside the warning window: exit %d, %+v", code, r.Certificates[0])
	}
	waitUntil(c.NotAfter.Add(time.Second))
	if r, code = status(t, schema, conf); code != tlspilot.ExitCritical || r.Certificates[0].State != tlspilot.StateExpired || r.Certificates[0].DaysLeft > 0 {
		t.Fatalf("after expiry: exit %d, %+v", code, r.Certificates[0])
	}
	if code, out, _ := runBinary(t, "status", "walk.example.test", "--config", conf); code != 2 {
		t.Errorf("status NAME: exit %d\n%s", code, out)
	}
	if code, out, _ := runBinary(t, "status", "--config", conf, "other.example.test"); code != 3 || !strings.Contains(out, "UNKNOWN") {
		t.Errorf("status for a name with no certificate: exit %d, want 3\n%s", code, out)
	}

	// A storage that cannot be read: its data folder is a file.
	broken := filepath.Join(e.dir, "broken")
	write(t, filepath.Join(broken, "data"), "not a folder\n")
	conf = e.config(fmt.Sprintf("[[site]]\nnames = [\"walk.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	text, _ := os.ReadFile(conf)
	write(t, conf, strings.Replace(string(text), filepath.Join(e.dir, "storage"), broken, 1))
	if r, code = status(t, schema, conf); code != tlspilot.ExitUnknown || !strings.Contains(r.Error, "broken") {
		t.Errorf("unreadable storage: exit %d, %+v", code, r)
	}
	bad := filepath.Join(e.dir, "bad.toml")
	write(t, bad, "this is not toml\n")
	if r, code = status(t, schema, bad); code != tlspilot.ExitUnknown || !strings.Contains(r.Error, "bad.toml:1") {
		t.Errorf("unreadable config: exit %d, %+v", code, r)
	}
}

// servedSerial returns the serial of the certificate served for name.
func servedSerial(t *testing.T, e *env, name string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", e.https, &tls.Config{ServerName: name, RootCAs: e.roots})
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// waitServedChange waits until name is served with a serial other than
// old, and returns it.
func waitServedChange(t *testing.T, e *env, name, old string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := servedSerial(t, e, name); s != old {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still served with serial %s after %v", name, old, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRenewAndRevokeWhileServing: `tlspilot renew --force` and `tlspilot
// revoke` run next to a running `tlspilot serve` on the same storage (the
// daemon answers the challenges): the daemon serves the new certificate
// within 60 s without a restart or signal, and the revocation shows at
// Pebble.
func TestRenewAndRevokeWhileServing(t *testing.T) {
	e := newEnv(t)
	conf := e.config(fmt.Sprintf("[[site]]\nnames = [\"ops.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("ops.example.test", 30*time.Second)
	first := servedSerial(t, e, "ops.example.test")

	code, out, errOut := runBinary(t, "renew", "--force", "--config", conf, "ops.example.test")
	if code != 0 || !strings.Contains(out, "ops.example.test") || !strings.Contains(out, "done") {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	for _, step := range []string{"contacting the CA", "ordering", "validating", "finalizing"} {
		if !strings.Contains(out, step) {
			t.Errorf("renew's progress does not show %q:\n%s", step, out)
		}
	}
	start := time.Now()
	second := waitServedChange(t, e, "ops.example.test", first, 60*time.Second)
	t.Logf("renewed certificate served %v after renew returned", time.Since(start).Round(time.Millisecond))

	// On a terminal (script(1) gives it one) the progress is one line per
	// certificate, redrawn in place.
	tty := exec.Command("script", "-qec", "stty cols 120 rows 40; "+buildBinary(t)+" renew --force --config "+conf, "/dev/null")
	ttyOut, err := tty.CombinedOutput()
	if err != nil {
		t.Fatalf("renew on a terminal: %v\n%s", err, ttyOut)
	}
	if !strings.Contains(string(ttyOut), "\x1b[") || !strings.Contains(string(ttyOut), "ops.example.test") || !strings.Contains(string(ttyOut), "done") {
		t.Errorf("renew on a terminal shows no live progress:\n%q", ttyOut)
	}
	second = waitServedChange(t, e, "ops.example.test", second, 60*time.Second)

	code, out, errOut = runBinary(t, "revoke", "--reason", "keyCompromise", "--config", conf, "ops.example.test")
	if code != 0 {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, errOut)
	}
	if st, reason := e.p.CertStatus(t, second); st != "Revoked" || reason != 1 {
		t.Errorf("Pebble says certificate %s is %s (reason %d), want Revoked (1, keyCompromise)", second, st, reason)
	}
	third := waitServedChange(t, e, "ops.example.test", second, 60*time.Second)
	if st, _ := e.p.CertStatus(t, third); st != "Valid" {
		t.Errorf("replacement %s is %s at Pebble", third, st)
	}
	// The CA refuses the replacement's order: the revocation is told as
	// done, the missing replacement as what failed; a second run finds
	// the certificate revoked already and says the same.
	e.p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/order-plz" {
			return false
		}
		testenv.WriteProblem(w, http.StatusServiceUnavailable, "serverInternal", "orders refused by the test", 0)
		return true
	})
	for i := range 2 {
		code, out, errOut = runBinary(t, "revoke", "--config", conf, "ops.example.test")
		if code != 1 || out != "revoked ops.example.test (unspecified)\n" || !strings.Contains(errOut, "tlspilot revoke: no replacement yet") {
			t.Errorf("revoke %d with the replacement refused: exit %d, want 1, the revocation on stdout and the replacement's failure\n%s%s", i+1, code, out, errOut)
		}
	}
	if code, out, _ := runBinary(t, "revoke", "--reason", "whatever", "--config", conf, "ops.example.test"); code != 2 {
		t.Errorf("bad reason: exit %d\n%s", code, out)
	}
	if code, _, errOut := runBinary(t, "renew", "--config", conf, "nobody.example.test"); code != 1 || !strings.Contains(errOut, "no managed certificate") {
		t.Errorf("renew of an unknown name: exit %d, %s", code, errOut)
	}
}
