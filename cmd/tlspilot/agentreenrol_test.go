package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/fleet"
)

// startAgentDaemon runs `tlspilot agent --config conf` until the test
// ends, stopping it with SIGTERM, and returns its log.
func startAgentDaemon(t *testing.T, conf string) *syncBuffer {
	t.Helper()
	log, _ := startUntilCleanup(t, "agent", "--config", conf)
	return log
}

// waitLog waits until log holds one of wants and returns the first
// found, failing the test after deadline (a bound on a wait, not an
// assertion on its duration).
func waitLog(t *testing.T, log *syncBuffer, deadline time.Duration, wants ...string) string {
	t.Helper()
	for end := time.Now().Add(deadline); ; time.Sleep(100 * time.Millisecond) {
		for _, w := range wants {
			if strings.Contains(log.String(), w) {
				return w
			}
		}
		if time.Now().After(end) {
			t.Fatalf("agent log holds none of %q:\n%s", wants, log.String())
		}
	}
}

// identityOf runs status --json on an agent's config and returns its
// exit code and the status of the agent's client certificate.
func identityOf(t *testing.T, conf string) (int, tlspilot.CertStatus) {
	t.Helper()
	code, out, errOut := runBinary(t, "status", "--config", conf, "--json")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	for _, c := range r.Certificates {
		if c.ID == fleet.IdentityStatusID {
			return code, c
		}
	}
	t.Fatalf("status --json lists no client certificate:\n%s", out)
	return 0, tlspilot.CertStatus{}
}

// TestAgentRefusedThenEnrolledAgain: the built binaries against the
// real issuer (Pebble, BIND, dns-01). Once the agent is revoked,
// agent --once prints a first line that agrees with its exit code
// (WARNING, 1), and status shows the client certificate failing with
// the refusal until an exchange succeeds. A daemon refused on its
// renewal backs off; after revoke-agent, issuer enroll and agent enroll
// it presents the new client certificate without a restart and asks at
// once, not after its backoff with the old one, renews and deploys;
// status says OK.
func TestAgentRefusedThenEnrolledAgain(t *testing.T) {
	f := newFleetEnv(t, "")
	f.start(t)
	conf, dir := f.enrolAgent(t, "db1")
	if code, out, errOut := runBinary(t, "agent", "--config", conf, "--once"); code != 0 {
		t.Fatalf("agent --once: exit %d\n%s%s", code, out, errOut)
	}
	_, st := agentCertStatus(t, conf)

	mustRun(t, "issuer", "revoke-agent", "--config", f.conf, "db1")
	code, out, errOut := runBinary(t, "agent", "--config", conf, "--once")
	if first, _, _ := strings.Cut(out, "\n"); code != tlspilot.ExitWarning || !strings.HasPrefix(first, "WARNING: ") {
		t.Errorf("agent --once, revoked: exit %d, first line %q\n%s", code, first, errOut)
	}
	code, id := identityOf(t, conf)
	if code != tlspilot.ExitWarning || id.State != tlspilot.StateFailing || !strings.Contains(id.LastError, "refused this agent's client certificate") {
		t.Errorf("status after the refusal: exit %d, %s, %q", code, id.State, id.LastError)
	}

	renewalDue(t, dir, st.ID)
	log := startAgentDaemon(t, conf)
	waitLog(t, log, time.Minute, `msg="certificate request failed"`)
	tok, _ := mustRun(t, "issuer", "enroll", "--config", f.conf, "db1", "--names", "db1.example.test,*.db1.example.test")
	write(t, filepath.Join(dir, "token"), tok)
	if out, _ := mustRun(t, "agent", "enroll", "--config", conf, "--token-file", filepath.Join(dir, "token")); !strings.Contains(out, "enrolled with") {
		t.Errorf("agent enroll: %s", out)
	}
	// The old code asked again with the old certificate after its
	// backoff (30 to 60 s): a second failed attempt.
	if got := waitLog(t, log, 2*time.Minute, "certificate obtained", "attempt=2"); got != "certificate obtained" {
		t.Fatalf("the daemon did not use the new enrolment:\n%s", log.String())
	}
	waitLog(t, log, 30*time.Second, "msg=deployed")
	if code, out, _ := runBinary(t, "status", "--config", conf); code != 0 || !strings.HasPrefix(out, "OK: 2 valid") {
		t.Errorf("status after the new enrolment: exit %d\n%s", code, out)
	}
}
