package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startUntilCleanup starts the built binary with args and stops it with
// SIGTERM when the test ends, failing the test if it then exits with an
// error or does not stop within 10 s. It returns the process's output and
// a channel that receives its exit.
func startUntilCleanup(t *testing.T, args ...string) (*syncBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s exited: %v\n%s", args[0], err, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGTERM:\n%s", args[0], out.String())
		}
	})
	return out, exited
}

// startIssuer runs `tlspilot issuer --config conf` until the test ends
// and waits until it listens on addr. It returns the daemon's output.
func startIssuer(t *testing.T, conf, addr string) *syncBuffer {
	t.Helper()
	out, exited := startUntilCleanup(t, "issuer", "--config", conf)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return out
		}
		select {
		case err := <-exited:
			t.Fatalf("issuer exited before listening: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer not listening on %s:\n%s", addr, out.String())
		}
	}
}

// TestAgentEnroll: the built binary end to end on loopback: init makes
// the fleet CA, `tlspilot issuer` serves the API, `issuer enroll` makes a
// token, and `agent enroll` on the agent's config (the keys of issue 13)
// makes the agent's key, gets its client certificate over TLS and uses
// it; the key is stored sealed only, the token works once, and an agent
// that does not trust the fleet CA does not talk to the issuer.
func TestAgentEnroll(t *testing.T) {
	e, addr := issuerEnv(t)
	mustRun(t, "init", "--config", e.conf)
	caPEM, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	write(t, filepath.Join(e.dir, "fleet-ca.pem"), caPEM)
	log := startIssuer(t, e.conf, addr)
	tok, _ := mustRun(t, "issuer", "enroll", "--config", e.conf, "db1", "--names", "db1.example.com,*.db1.example.com")
	tok = strings.TrimSpace(tok)

	agentDir := filepath.Join(e.dir, "agent")
	agentConf := filepath.Join(e.dir, "agent.toml")
	write(t, agentConf, fmt.Sprintf(`issuer = "https://%s"
issuer_ca = %q
storage = %q
[[certificate]]
names = ["db1.example.com", "*.db1.example.com"]
fullchain = %q
privkey = %q
reload = ["true"]
`, addr, filepath.Join(e.dir, "fleet-ca.pem"), agentDir, filepath.Join(e.dir, "fullchain.pem"), filepath.Join(e.dir, "privkey.pem")))
	out, _ := mustRun(t, "agent", "enroll", "--config", agentConf, "--token", tok)
	for _, want := range []string{"enrolled with https://" + addr + " as db1: client certificate valid until ", "the issuer knows db1; it may obtain: db1.example.com, *.db1.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent enroll output lacks %q:\n%s", want, out)
		}
	}
	tree := readTree(t, agentDir)
	sealed := false
	for p, v := range tree {
		if strings.Contains(v, "PRIVATE KEY-----") {
			t.Errorf("%s holds a private key in clear", p)
		}
		sealed = sealed || strings.HasSuffix(p, filepath.Join("agent", "identity")) && strings.Contains(v, "TLSPILOT ENCRYPTED KEY")
	}
	if !sealed {
		t.Errorf("no sealed agent identity in %v", tree)
	}

	write(t, filepath.Join(e.dir, "token"), tok+"\n")
	code, _, errOut := runBinary(t, "agent", "enroll", "--config", agentConf, "--token-file", filepath.Join(e.dir, "token"))
	if code != 1 || !strings.Contains(errOut, "refused (HTTP 403): enrolment token already used") {
		t.Errorf("replayed token: exit %d, %s", code, errOut)
	}
	agents, _ := mustRun(t, "issuer", "agents", "--config", e.conf)
	if !strings.Contains(agents, "db1   enrolled") {
		t.Errorf("agents:\n%s", agents)
	}
	for line := range strings.Lines(agents) {
		// HOST STATE NAMES ENROLLED LAST-SEEN CLIENT-CERT-UNTIL REVOKED CERTS LAST-SERIAL LAST-CERT-UNTIL
		if f := strings.Fields(line); f[0] == "db1" && (len(f) != 10 || f[5] == "-" || f[6] != "-" || f[7] != "0") {
			t.Errorf("agents: db1 without its client certificate's expiry, or revoked: %q", line)
		}
	}

	write(t, filepath.Join(e.dir, "fleet-ca.pem"), string(e.p.RootsPEM)) // another CA
	tok2, _ := mustRun(t, "issuer", "enroll", "--config", e.conf, "db2", "--names", "db2.example.com")
	code, _, errOut = runBinary(t, "agent", "enroll", "--config", agentConf, "--token", strings.TrimSpace(tok2))
	if code != 1 || !strings.Contains(errOut, "certificate signed by unknown authority") {
		t.Errorf("agent not trusting the fleet CA: exit %d, %s", code, errOut)
	}
	if !strings.Contains(log.String(), "issuer API listening") || !strings.Contains(log.String(), "agent enrolled") {
		t.Errorf("issuer log:\n%s", log.String())
	}
}

// TestAgentHelp: agent enroll prints its help with --help and needs its
// config and token.
func TestAgentHelp(t *testing.T) {
	if code, out, errOut := runCLI(t, "agent", "enroll", "--help"); code != 0 || strings.Count(out, "Usage: tlspilot agent enroll ") != 1 || errOut != "" {
		t.Errorf("agent enroll --help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "agent", "enroll", "--config", "agent.toml"); code != 2 || !strings.Contains(errOut, "one of --token TOKEN or --token-file FILE are required") {
		t.Errorf("agent enroll without a token: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "agent", "bogus"); code != 2 || !strings.Contains(errOut, "enroll --config AGENT.toml") {
		t.Errorf("agent bogus: exit %d, %s", code, errOut)
	}
}
