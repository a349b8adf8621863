package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// selfSignedPEM is a CA certificate standing for a fleet CA the agent
// never reaches.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stand-in fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// agentConfig writes an agent's config for issuer (host:port) with one
// certificate for names, its files and reload in dir, and returns its
// path.
func agentConfig(t *testing.T, dir, issuer, caFile string, names ...string) string {
	t.Helper()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	if err := os.MkdirAll(filepath.Join(dir, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.toml")
	write(t, conf, fmt.Sprintf(`issuer = "https://%s"
issuer_ca = %q
storage = %q
[[certificate]]
names = [%s]
fullchain = %q
privkey = %q
mode = "0640"
reload = ["sh", "-c", "echo reloaded >> %s"]
`, issuer, caFile, filepath.Join(dir, "agent"), strings.Join(quoted, ", "), filepath.Join(dir, "live", "fullchain.pem"),
		filepath.Join(dir, "live", "privkey.pem"), filepath.Join(dir, "reloads")))
	return conf
}

// TestAgentNotEnrolled: before enrolment the agent refuses to run,
// saying how to enrol, and status, reading the agent's config, reports
// every certificate pending and the agent not enrolled (WARNING), as a
// document that follows the status schema.
func TestAgentNotEnrolled(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "fleet-ca.pem"), selfSignedPEM(t))
	conf := agentConfig(t, dir, "127.0.0.1:1", filepath.Join(dir, "fleet-ca.pem"), "db1.example.com", "*.db1.example.com")
	code, _, errOut := runBinary(t, "agent", "--config", conf, "--once")
	if code != 3 || !strings.Contains(errOut, "tlspilot agent enroll") {
		t.Errorf("agent --once before enrolment: exit %d, %s", code, errOut)
	}
	code, out, _ := runBinary(t, "status", "--config", conf)
	if code != 1 || !strings.HasPrefix(out, "WARNING: 2 pending") || !strings.Contains(out, "db1.example.com,*.db1.example.com") || !strings.Contains(out, "not enrolled") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = runBinary(t, "status", "--config", conf, "--json")
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if err := statusSchema(t).Validate(doc); err != nil {
		t.Errorf("status --json does not follow docs/status.schema.json: %v\n%s", err, out)
	}
	if code, out, _ := runCLI(t, "agent", "--help"); code != 0 || !strings.Contains(out, "Usage: tlspilot agent --config AGENT.toml [--once") || !strings.Contains(out, "-wait") {
		t.Errorf("agent --help: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "agent", "--once"); code != 2 || !strings.Contains(errOut, "--config AGENT.toml is required") {
		t.Errorf("agent --once without a config: exit %d, %s", code, errOut)
	}
}

// fileMode returns the permission bits of path.
func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// enrolAgent writes an agent's config for host (its name and wildcard,
// the policy `issuer enroll` gives it) in a directory of its own and
// enrols it with the binary; it returns the config and the directory.
func (f *fleetEnv) enrolAgent(t *testing.T, host string) (conf, dir string) {
	t.Helper()
	name := host + ".example.test"
	dir = t.TempDir()
	conf = agentConfig(t, dir, f.addr, filepath.Join(f.dir, "fleet-ca.pem"), name, "*."+name)
	tok, _ := mustRun(t, "issuer", "enroll", "--config", f.conf, host, "--names", name+",*."+name)
	mustRun(t, "agent", "enroll", "--config", conf, "--token", strings.TrimSpace(tok))
	return conf, dir
}

// agentCertStatus runs status --json on an agent's config and returns
// its exit code and the status of its certificate for names[0] (not
// the client certificate's).
func agentCertStatus(t *testing.T, conf string) (int, tlspilot.CertStatus) {
	t.Helper()
	code, out, errOut := runBinary(t, "status", "--config", conf, "--json")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	for _, c := range r.Certificates {
		if c.ID != fleet.IdentityStatusID {
			return code, c
		}
	}
	t.Fatalf("status --json lists no certificate of the agent:\n%s", out)
	return 0, tlspilot.CertStatus{}
}

// renewalDue rewrites the agent's record of certificate id so that its
// renewal is due now, as if its time had come (the issuer's window of a
// 90-day certificate opens in two months).
func renewalDue(t *testing.T, agentDir, id string) {
	t.Helper()
	path := filepath.Join(agentDir, "agent", "data", "agent", "certs", id)
	var rec map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &rec); err != nil {
		t.Fatal(err)
	}
	rec["renew_at"] = time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, string(b))
}

// TestAgentOnce: the built binary end to end against the real issuer
// (Pebble, BIND, dns-01). agent --once obtains the certificate, writes
// the PEM files with their modes and runs the reload, keeping the key
// sealed in its storage; status says valid.
// With the issuer down, a run before the renewal is due asks nothing and
// succeeds; once due, it fails, keeps the last good certificate deployed
// (no reload), says why and backs off; status says failing (WARNING). The
// issuer back, the next run renews (a new key) and deploys it.
func TestAgentOnce(t *testing.T) {
	f := newFleetEnv(t, "")
	proc := f.start(t)
	conf, dir := f.enrolAgent(t, "db1")
	fullchain, privkey, reloads := filepath.Join(dir, "live", "fullchain.pem"), filepath.Join(dir, "live", "privkey.pem"), filepath.Join(dir, "reloads")

	code, out, errOut := runBinary(t, "agent", "--config", conf, "--once")
	if code != 0 {
		t.Fatalf("agent --once: exit %d\n%s%s\nissuer:\n%s", code, out, errOut, proc.out.String())
	}
	for _, want := range []string{"certificate obtained", "deployed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("agent log lacks %q:\n%s", want, errOut)
		}
	}
	leaf := parseLeafFile(t, fullchain)
	if m := fileMode(t, fullchain); m != 0o644 {
		t.Errorf("fullchain.pem mode %04o", m)
	}
	if m := fileMode(t, privkey); m != 0o640 {
		t.Errorf("privkey.pem mode %04o", m)
	}
	if !strings.Contains(readFile(t, privkey), "-----BEGIN PRIVATE KEY-----") || len(leaf.DNSNames) != 2 {
		t.Errorf("deployed key or names wrong: %v", leaf.DNSNames)
	}
	if got := readFile(t, reloads); got != "reloaded\n" {
		t.Errorf("reloads after the first run: %q", got)
	}
	for p, v := range readTree(t, filepath.Join(dir, "agent")) {
		if strings.Contains(v, "PRIVATE KEY-----") {
			t.Errorf("the agent's storage holds a private key in clear: %s", p)
		}
	}
	code, st := agentCertStatus(t, conf)
	if code != 0 || st.State != tlspilot.StateValid || st.Serial != leaf.SerialNumber.Text(16) || st.Deploy == nil || st.Deploy.State != tlspilot.DeployDone {
		t.Fatalf("status after --once: exit %d, %+v", code, st)
	}
	if code, out, _ := runBinary(t, "status", "--config", conf); code != 0 || !strings.HasPrefix(out, "OK: 2 valid") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if code, _, errOut := runBinary(t, "agent", "--config", conf, "--once"); code != 0 || strings.Contains(errOut, "obtained") || strings.Contains(errOut, "msg=deployed") {
		t.Errorf("--once again, nothing due: exit %d\n%s", code, errOut)
	}

	proc.kill(t)
	if code, _, errOut := runBinary(t, "agent", "--config", conf, "--once"); code != 0 || strings.Contains(errOut, "failed") {
		t.Errorf("--once with the issuer down, renewal not due: exit %d\n%s", code, errOut)
	}
	renewalDue(t, dir, st.ID)
	code, _, errOut = runBinary(t, "agent", "--config", conf, "--once")
	if code != 1 || !strings.Contains(errOut, "renewal failing (attempt 1") || !strings.Contains(errOut, "connection refused") || !strings.Contains(errOut, "retry_in=") {
		t.Errorf("--once with the issuer down, renewal due: exit %d\n%s", code, errOut)
	}
	if parseLeafFile(t, fullchain).SerialNumber.Cmp(leaf.SerialNumber) != 0 || readFile(t, reloads) != "reloaded\n" {
		t.Errorf("the last good certificate was not kept as deployed")
	}
	code, st = agentCertStatus(t, conf)
	if code != 1 || st.State != tlspilot.StateFailing || st.Attempts != 1 || !strings.Contains(st.LastError, "connection refused") ||
		st.NextRenewal.Sub(st.LastAttempt) < 30*time.Second {
		t.Errorf("status with renewal failing: exit %d, %+v", code, st)
	}

	proc = f.start(t)
	code, out, errOut = runBinary(t, "agent", "--config", conf, "--once")
	if code != 0 {
		t.Fatalf("--once with the issuer back: exit %d\n%s%s\nissuer:\n%s", code, out, errOut, proc.out.String())
	}
	renewed := parseLeafFile(t, fullchain)
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 || renewed.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Errorf("not renewed with a new key")
	}
	if got := readFile(t, reloads); got != "reloaded\nreloaded\n" {
		t.Errorf("reloads after the renewal: %q", got)
	}
	if code, st = agentCertStatus(t, conf); code != 0 || st.State != tlspilot.StateValid || st.Attempts != 0 {
		t.Errorf("status after the renewal: exit %d, %+v", code, st)
	}

	// Revoked, the agent learns it at its next run, though nothing is due.
	mustRun(t, "issuer", "revoke-agent", "--config", f.conf, "db1")
	code, out, errOut = runBinary(t, "agent", "--config", conf, "--once")
	if code == 0 || !strings.Contains(out+errOut, "revoked, or unknown to this issuer") || !strings.Contains(out+errOut, "enrol again") {
		t.Errorf("--once after the agent was revoked: exit %d\n%s%s", code, out, errOut)
	}
}

// TestAgentDaemon: `tlspilot agent --config` as a daemon obtains and
// deploys its certificate, logs it, and stops on SIGTERM with exit 0.
func TestAgentDaemon(t *testing.T) {
	f := newFleetEnv(t, "")
	f.start(t)
	conf, dir := f.enrolAgent(t, "web1")
	cmd := exec.Command(buildBinary(t), "agent", "--config", conf)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("agent exited: %v\n%s", err, log.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("agent did not stop on SIGTERM:\n%s", log.String())
		}
	}()
	for deadline := time.Now().Add(90 * time.Second); !strings.Contains(log.String(), "msg=deployed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent did not deploy:\n%s", log.String())
		}
	}
	for _, want := range []string{"agent keeping certificates", "certificate obtained"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("agent log lacks %q:\n%s", want, log.String())
		}
	}
	if leaf := parseLeafFile(t, filepath.Join(dir, "live", "fullchain.pem")); leaf.DNSNames[0] != "web1.example.test" && leaf.DNSNames[1] != "web1.example.test" {
		t.Errorf("deployed certificate for %v", leaf.DNSNames)
	}
	if code, st := agentCertStatus(t, conf); code != 0 || st.State != tlspilot.StateValid {
		t.Errorf("status of the daemon's certificate: exit %d, %+v", code, st)
	}
}

// sleepUntil waits until at (a wait for the clock, not an assertion).
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// withoutARI makes Pebble answer every renewal information request with
// 404, as a CA without ARI: the issuer then hands agents the ratio
// rule's window (for a 60-second certificate, from 26 to 30 seconds),
// where Pebble's own window would span the whole of a certificate
// shorter than two days.
func withoutARI(p *testenv.Pebble) {
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "renewalInfo") {
			http.NotFound(w, r)
			return true
		}
		return false
	})
}

// TestAgentIssuerDownForAWeek: the issue's "issuer down for a simulated
// week", with 60-second certificates standing for 30-day ones (a second
// for half a day). The agent daemon has its certificate; the issuer is
// killed before the renewal falls due. The daemon's renewal fails, it
// backs off (no second attempt within 30 seconds) and keeps the
// certificate deployed; status says failing, then expiring (warn_window)
// while it is still valid. The issuer back, the daemon gets and deploys a new
// certificate at its next attempt, and status says valid.
func TestAgentIssuerDownForAWeek(t *testing.T) {
	f := newFleetEnvWith(t, "", testenv.PebbleOptions{Validity: 60 * time.Second})
	withoutARI(f.p)
	proc := f.start(t)
	conf, dir := f.enrolAgent(t, "db2")
	// A warning window of 15 s rather than 10% (6 s): status must run
	// inside it while the certificate is still valid, and a loaded CI
	// machine once took longer than 5.5 s (2026-12-01: "expired").
	writeFile(t, conf, "warn_window = \"15s\"\n"+readFile(t, conf))
	fullchain, reloads := filepath.Join(dir, "live", "fullchain.pem"), filepath.Join(dir, "reloads")
	if code, out, errOut := runBinary(t, "agent", "--config", conf, "--once"); code != 0 {
		t.Fatalf("agent --once: exit %d\n%s%s\nissuer:\n%s", code, out, errOut, proc.out.String())
	}
	leaf := parseLeafFile(t, fullchain)
	_, st := agentCertStatus(t, conf)
	proc.kill(t)

	cmd := exec.Command(buildBinary(t), "agent", "--config", conf)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("agent exited: %v\n%s", err, log.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("agent did not stop on SIGTERM:\n%s", log.String())
		}
	}()

	sleepUntil(st.RenewAt.Add(2 * time.Second))
	code, failing := agentCertStatus(t, conf)
	if code != 1 || failing.State != tlspilot.StateFailing || failing.Attempts != 1 || !strings.Contains(failing.LastError, "connection refused") {
		t.Errorf("status once the renewal failed: exit %d, %+v\n%s", code, failing, log.String())
	}
	sleepUntil(failing.WarnFrom.Add(500 * time.Millisecond))
	code, expiring := agentCertStatus(t, conf)
	if code != 1 || expiring.State != tlspilot.StateExpiring || !time.Now().Before(leaf.NotAfter) {
		t.Errorf("status in the warning window: exit %d, %s, %.2f days left", code, expiring.State, expiring.DaysLeft)
	}
	if n := strings.Count(log.String(), `msg="certificate request failed"`); n != 1 || !strings.Contains(log.String(), "retry_in=") {
		t.Errorf("%d failed requests logged in the %s after the first (want 1: backoff of at least 30 s):\n%s", n, time.Since(failing.LastAttempt).Round(time.Second), log.String())
	}
	if parseLeafFile(t, fullchain).SerialNumber.Cmp(leaf.SerialNumber) != 0 || readFile(t, reloads) != "reloaded\n" {
		t.Errorf("the last good certificate was not kept deployed")
	}

	proc = f.start(t)
	for deadline := time.Now().Add(2 * time.Minute); strings.Count(log.String(), "certificate obtained") < 1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not renew once the issuer was back:\n%s\nissuer:\n%s", log.String(), proc.out.String())
		}
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "msg=deployed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not deployed:\n%s", log.String())
		}
	}
	if parseLeafFile(t, fullchain).SerialNumber.Cmp(leaf.SerialNumber) == 0 || readFile(t, reloads) != "reloaded\nreloaded\n" {
		t.Errorf("the new certificate is not in place, or not reloaded")
	}
	if code, st := agentCertStatus(t, conf); code != 0 || st.State != tlspilot.StateValid || st.Attempts != 0 {
		t.Errorf("status after the issuer came back: exit %d, %+v", code, st)
	}
}

// TestFleetDaemonsSurviveSignals: the issuer and the agent daemon, as
// serve and certs, catch SIGHUP (logged: they read their config at
// start only) and SIGUSR1 (logrotate: the issuer reopens its log files;
// the agent, logging to standard error, says so) instead of ending.
func TestFleetDaemonsSurviveSignals(t *testing.T) {
	f := newFleetEnv(t, "")
	is := f.start(t)
	conf, _ := f.enrolAgent(t, "web1")
	agent := exec.Command(buildBinary(t), "agent", "--config", conf)
	log := &syncBuffer{}
	agent.Stdout, agent.Stderr = log, log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = agent.Process.Kill()
		}
	})
	waitLog := func(who string, out *syncBuffer, ended <-chan error, want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-ended:
				t.Fatalf("%s ended (%v) instead of logging %q:\n%s", who, err, want, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not log %q:\n%s", who, want, out.String())
			}
		}
	}
	waitLog("the agent", log, exited, "agent keeping certificates")
	for _, p := range []*os.Process{is.cmd.Process, agent.Process} {
		for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
			if err := p.Signal(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitLog("the agent", log, exited, "SIGHUP ignored: the agent")
	waitLog("the agent", log, exited, "SIGUSR1 ignored")
	waitLog("the issuer", is.out, is.exited, "SIGHUP ignored: the issuer")
	waitLog("the issuer", is.out, is.exited, "SIGUSR1: log files reopened")
}
