package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveLogged starts `tlspilot serve` with its output in a buffer the test
// reads while it runs, and stops it at cleanup.
func (e *env) serveLogged() (*exec.Cmd, *syncBuffer) {
	e.t.Helper()
	cmd := exec.Command(buildBinary(e.t), "serve", "--config", e.conf)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			e.t.Logf("tlspilot output:\n%s", out.String())
		}
	})
	return cmd, out
}

// waitCount waits until s occurs n times in out.
func waitCount(t *testing.T, out *syncBuffer, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q seen %d times, want %d", s, strings.Count(out.String(), s), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadRestartOnlyWarning: SIGHUP warns that a setting changes only on
// restart by comparing with the config serve runs with, not the last one
// loaded: a second change warns again, a restored value does not.
func TestReloadRestartOnlyWarning(t *testing.T) {
	e := newEnv(t)
	site := fmt.Sprintf("[[site]]\nnames = [\"a.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www"))
	e.config(site)
	cmd, out := e.serveLogged()
	waitCount(t, out, "msg=serving", 1)
	const warn = "this setting changes only on restart"
	steps := []struct {
		email string
		warns int // warnings seen so far
	}{
		{"b@example.test", 1},   // changed: warn
		{"c@example.test", 2},   // changed again: warn again
		{"c@example.test", 3},   // reloaded again, still not in effect: warn
		{"ops@example.test", 3}, // restored: no warning
	}
	for i, s := range steps {
		write(t, e.conf, strings.Replace(readFile(t, e.conf), emailLine(t, e.conf), "email = \""+s.email+"\"", 1))
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitCount(t, out, "config reloaded", i+1)
		if got := strings.Count(out.String(), warn); got != s.warns {
			t.Errorf("after email = %q: %d warnings, want %d", s.email, got, s.warns)
		}
	}
}

// emailLine returns the email line of the config file at path.
func emailLine(t *testing.T, path string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if strings.HasPrefix(l, "email = ") {
			return l
		}
	}
	t.Fatalf("no email line in %s", path)
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rootOnlyStorage returns a storage directory that only root may write,
// and a config using it with user = "nobody".
func rootOnlyStorage(t *testing.T) (conf, storage string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root, to run serve as another user")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // nobody may pass through
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	storage = filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("agree_terms = true\nstorage = %q\nuser = \"nobody\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n[[site]]\nnames = [\"a.example.test\"]\n", storage))
	return conf, storage
}

// TestCheckStorage: check refuses a storage that the user serve runs as
// cannot write, at the storage line, saying so; it prints the storage
// path it will use.
func TestCheckStorage(t *testing.T) {
	conf, storage := rootOnlyStorage(t)
	code, out, errOut := runCLI(t, "check", "--config", conf)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:2: storage: "+storage) || !strings.Contains(errOut, "must be writable by nobody") {
		t.Errorf("unwritable storage: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if err := os.Chmod(storage, 0o777); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "check", "--config", conf)
	if code != 0 || !strings.Contains(out, "storage path: "+storage+"\n") {
		t.Errorf("writable storage: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

// TestCheckTerms: check refuses Let's Encrypt, the default CA, without
// agree_terms.
func TestCheckTerms(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nca = \"letsencrypt-staging\"\n[[site]]\nnames = [\"a.example\"]\nredirect = \"https://example.org/\"\n", filepath.Join(dir, "s")))
	code, out, errOut := runCLI(t, "check", "--config", conf)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:2: agree_terms: Let's Encrypt requires agreeing to its terms of service") {
		t.Errorf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

// TestCheckUnissuableNames: with Let's Encrypt, check still passes a
// site named under a reserved top-level domain or by a private address,
// but warns, at the names' line, that the CA will refuse them; and it
// says that a storage directory not made yet will be.
func TestCheckUnissuableNames(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nca = \"letsencrypt-staging\"\nagree_terms = true\n[[site]]\nnames = [\"www.example.com\", \"app.test\", \"192.168.1.10\"]\n", filepath.Join(dir, "s")))
	code, out, errOut := runCLI(t, "check", "--config", conf)
	for _, want := range []string{
		"warning: " + conf + ":5: site[1].names: app.test: Let's Encrypt does not issue for names under .test",
		"warning: " + conf + ":5: site[1].names: 192.168.1.10: Let's Encrypt does not issue for an IP address that is not public",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
		}
	}
	if strings.Contains(out, "www.example.com: Let's Encrypt") {
		t.Errorf("a public name warned about: %q", out)
	}
	if want := "storage path: " + filepath.Join(dir, "s") + " (does not exist yet: serve creates it, mode 0700)"; !strings.Contains(out, want) {
		t.Errorf("stdout %q; want %q", out, want)
	}
}

// TestServeStorageNotWritable: serve refuses at start a storage that the
// user it runs as cannot write, at the storage line, with the fix.
func TestServeStorageNotWritable(t *testing.T) {
	conf, storage := rootOnlyStorage(t)
	code, errOut := serveOnce(t, conf)
	want := "tlspilot.toml:2: storage: " + storage + ": not writable: permission denied (serve runs as user \"nobody\""
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "chown -R nobody "+storage) {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// TestServeKEKNotReadable: a storage made by root, whose key-encryption
// key nobody may read, is refused at the storage line with the fix.
func TestServeKEKNotReadable(t *testing.T) {
	conf, storage := rootOnlyStorage(t)
	if err := os.Chmod(storage, 0o777); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(storage, "kek"), "0123456789abcdef0123456789abcdef")
	if err := os.Chmod(filepath.Join(storage, "kek"), 0o400); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "check", "--config", conf)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:2: storage: "+storage+": permission denied: "+storage+"/kek is mode -r--------") {
		t.Errorf("check: exit %d, stderr %q", code, errOut)
	}
	code, errOut = serveOnce(t, conf)
	if code != 1 || !strings.Contains(errOut, "tlspilot.toml:2: storage: "+storage+": open key-encryption key") || !strings.Contains(errOut, "chown -R nobody") {
		t.Errorf("serve: exit %d, stderr %q", code, errOut)
	}
}

// serveOnce runs `tlspilot serve` with conf, expecting it to stop at
// start, and returns its exit code and standard error.
func serveOnce(t *testing.T, conf string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "serve", "--config", conf)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	}
	t.Fatalf("serve did not fail at start: %v", err)
	return 0, ""
}

// TestLogFiles: log_format = "json" and log_file; SIGUSR1 reopens the log
// and the access log after logrotate moved them; access-log durations
// carry their unit; SIGTERM logs one line.
func TestLogFiles(t *testing.T) {
	e := newEnv(t)
	e.config(fmt.Sprintf("[[site]]\nnames = [\"log.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	logPath, accessPath := filepath.Join(e.dir, "tlspilot.log"), filepath.Join(e.dir, "access.log")
	conf := strings.Replace(readFile(t, e.conf), "access_log = \"off\"\n",
		fmt.Sprintf("access_log = %q\nlog_file = %q\nlog_format = \"json\"\n", accessPath, logPath), 1)
	write(t, e.conf, conf)
	cmd, _ := e.serveLogged()
	e.waitIssued("log.example.test", 60*time.Second)
	get(t, e.client(), "https://log.example.test/before")

	for _, p := range []string{logPath, accessPath} { // logrotate without copytruncate
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFile(t, logPath, `"msg":"SIGUSR1: log files reopened"`)
	get(t, e.client(), "https://log.example.test/after")
	waitFile(t, accessPath, `"path":"/after"`)
	if strings.Contains(readFile(t, accessPath), "/before") || !strings.Contains(readFile(t, accessPath+".1"), "/before") {
		t.Error("requests before SIGUSR1 are not in the rotated access log alone")
	}
	line := jsonLines(t, accessPath)[0]
	if d, ok := line["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("access log line without duration_ms: %v", line)
	}
	if !strings.Contains(readFile(t, logPath+".1"), `"msg":"serving"`) {
		t.Error("the rotated log does not hold the start")
	}

	before := len(jsonLines(t, logPath))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	lines := jsonLines(t, logPath)[before:]
	if len(lines) != 1 || lines[0]["msg"] != "stopped" || lines[0]["reason"] != "terminated signal received" {
		t.Errorf("log lines at shutdown: %v, want one, stopped", lines)
	}
}

// waitFile waits until the file at path contains s.
func waitFile(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %s:\n%s", path, s, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonLines parses every line of the file at path as a JSON object.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, path)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: line %q: %v", path, l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestUserAgentVersion: serve and renew name tlspilot and the version of
// the binary to the CA, as one product token.
func TestUserAgentVersion(t *testing.T) {
	ua := userAgent()
	v := strings.Fields(version())[0]
	if strings.ContainsAny(ua, " ()") || (ua != "tlspilot/"+v && ua != "tlspilot/devel") {
		t.Errorf("userAgent() = %q, version %q", ua, version())
	}
}

// TestCLIConfigArgument: check and serve take the config file as an
// argument or with -c, short for --config; "tlspilot help COMMAND" is
// COMMAND's help.
func TestCLIConfigArgument(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "site.toml")
	writeFile(t, conf, fmt.Sprintf("agree_terms = true\nstorage = %q\n", filepath.Join(dir, "s")))
	for _, args := range [][]string{{"check", conf}, {"check", "-c", conf}, {"check", "--config", conf}, {"check", "-c", conf, conf}} {
		if code, out, errOut := runCLI(t, args...); code != 0 || !strings.Contains(out, conf+": OK") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	missing := filepath.Join(dir, "missing.toml")
	for _, args := range [][]string{{"serve", "-c", missing}, {"serve", missing}} {
		if code, _, errOut := runCLI(t, args...); code != 1 || !strings.Contains(errOut, missing) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "check", "-c", conf, missing); code != 2 || !strings.Contains(errOut, "two config files") {
		t.Errorf("two config files: exit %d, stderr %q", code, errOut)
	}
	for _, c := range []string{"serve", "check", "status", "renew", "revoke", "clean", "version"} {
		code, out, errOut := runCLI(t, "help", c)
		if code != 0 || !strings.HasPrefix(out, "Usage: tlspilot "+c) {
			t.Errorf("help %s: exit %d, stdout %q, stderr %q", c, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "help", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stderr %q", code, errOut)
	}
}

// TestClean: after a site is removed from the config, tlspilot status
// lists its certificate as unmanaged and tlspilot clean removes it (a dry
// run first), leaving the configured one.
func TestClean(t *testing.T) {
	e := newEnv(t)
	www := filepath.Join(e.dir, "www")
	site := func(name string) string { return fmt.Sprintf("\n[[site]]\nnames = [%q]\nroot = %q\n", name, www) }
	e.config(site("stays.example.test") + site("removed.example.test"))
	cmd, _ := e.serveLogged()
	e.waitIssued("stays.example.test", 60*time.Second)
	e.waitIssued("removed.example.test", 60*time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	e.config(site("stays.example.test"))

	if code, out, errOut := runCLI(t, "status", "-c", e.conf); !strings.Contains(out, "unmanaged") {
		t.Errorf("status: exit %d, stdout %q, stderr %q; want removed.example.test unmanaged", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "clean", "-c", e.conf)
	if code != 0 || out != "nothing to remove\n" {
		t.Errorf("clean (30d): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Another process on the storage (a cluster node with other sites)
	// still serves it: clean given both configs keeps it; one config per
	// process, on one storage; other commands take one config.
	conf, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(filepath.Dir(e.conf), "node-b.toml")
	write(t, node, strings.ReplaceAll(string(conf), "stays.example.test", "removed.example.test"))
	if code, out, errOut := runCLI(t, "clean", "-c", e.conf, "-c", node, "--older-than", "0"); code != 0 || out != "nothing to remove\n" {
		t.Errorf("clean with both nodes' configs: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	elsewhere := filepath.Join(filepath.Dir(e.conf), "elsewhere.toml")
	write(t, elsewhere, strings.Replace(string(conf), "storage = ", "storage = \""+filepath.Join(e.dir, "other-storage")+"\"\n# was: ", 1))
	if code, _, errOut := runCLI(t, "clean", "-c", e.conf, "-c", elsewhere, "--dry-run"); code != 1 || !strings.Contains(errOut, "the configs given must share one storage") {
		t.Errorf("clean with configs of two storages: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "-c", e.conf, "-c", node); code != 3 || !strings.Contains(errOut, "a second config file") {
		t.Errorf("status with two configs: exit %d, stderr %q; want 3 (UNKNOWN, a usage error) and a refusal", code, errOut)
	}
	code, out, errOut = runCLI(t, "clean", "-c", e.conf, "--older-than", "1ns", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "would remove  removed.example.test-") || strings.Count(out, "\n") != 1 {
		t.Errorf("clean --dry-run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, zero := range []string{"0", "0s", "0d"} { // zero is all of them, not the default
		code, out, errOut = runCLI(t, "clean", "-c", e.conf, "--older-than", zero, "--dry-run")
		if code != 0 || !strings.HasPrefix(out, "would remove  removed.example.test-") {
			t.Errorf("clean --older-than %s --dry-run: exit %d, stdout %q, stderr %q", zero, code, out, errOut)
		}
	}
	code, out, errOut = runCLI(t, "clean", "-c", e.conf, "--older-than", "1ns")
	if code != 0 || !strings.HasPrefix(out, "removed  removed.example.test-") || !strings.Contains(out, "obtained 0d ago") {
		t.Errorf("clean: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "status", "-c", e.conf); code != 0 || strings.Contains(out, "removed.example.test") || !strings.Contains(out, "stays.example.test") {
		t.Errorf("status after clean: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "clean", "-c", e.conf, "--older-than", "soon"); code != 2 || !strings.Contains(errOut, "want a number of days") {
		t.Errorf("clean --older-than soon: exit %d, stderr %q", code, errOut)
	}
}

// TestCheckReloadProgramMissing: check passes a [[certificate]] whose
// reload program does not exist, but warns at the reload line, for the
// main config and an agent's, naming the program; a program that exists
// gets no warning. (certs and the agent found out only after the first
// deploy, when the software kept serving the old files.)
func TestCheckReloadProgramMissing(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf(`storage = %q
ca = "https://ca.example.com/dir"
agree_terms = true
[[certificate]]
names = ["mail.example.com"]
fullchain = %q
privkey = %q
reload = ["no-such-reload-program-tlspilot", "reload"]
[[certificate]]
names = ["db.example.com"]
fullchain = %q
privkey = %q
reload = ["/bin/sh", "-c", "true"]
`, filepath.Join(dir, "s"), filepath.Join(dir, "m.pem"), filepath.Join(dir, "m.key"), filepath.Join(dir, "d.pem"), filepath.Join(dir, "d.key")))
	code, out, errOut := runCLI(t, "check", "--config", conf)
	want := "warning: " + conf + `:8: certificate[1].reload: no program "no-such-reload-program-tlspilot" in PATH`
	if code != 0 || !strings.Contains(out, want) || strings.Count(out, "reload:") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q; want one warning %q", code, out, errOut, want)
	}

	ca := filepath.Join(dir, "fleet-ca.pem")
	writeFile(t, ca, string(testCAPEM(t)))
	agent := filepath.Join(dir, "agent.toml")
	writeFile(t, agent, `issuer = "https://issuer.example.com:8443"
issuer_ca = "`+ca+`"
storage = "`+filepath.Join(dir, "agent")+`"
[[certificate]]
names = ["db1.example.com"]
fullchain = "`+filepath.Join(dir, "fullchain.pem")+`"
privkey = "`+filepath.Join(dir, "privkey.pem")+`"
reload = ["`+filepath.Join(dir, "missing-reload")+`"]
`)
	code, out, errOut = runCLI(t, "check", "--config", agent)
	want = "warning: " + agent + ":8: certificate[1].reload: program " + filepath.Join(dir, "missing-reload") + " cannot be run (no such file or directory)"
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("agent: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}
