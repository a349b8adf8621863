package notify

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestCommandArgumentsAndEnvironment runs a real script that writes what
// it got, byte for byte.
func TestCommandArgumentsAndEnvironment(t *testing.T) {
	t.Setenv("TLSPILOT_STALE", "from the daemon's own environment")
	t.Setenv("NOTIFY_TEST_INHERITED", "yes")
	dir := t.TempDir()
	hook := script(t, dir, "hook", `dir=$1
printf '%s\0' "$@" > "$dir/args.tmp"
env -0 > "$dir/env.tmp"
readlink /proc/self/fd/0 > "$dir/stdin.tmp"
echo $$ > "$dir/pid.tmp"
cut -d' ' -f5 /proc/$$/stat > "$dir/pgrp.tmp"
for f in args env stdin pid pgrp; do mv "$dir/$f.tmp" "$dir/$f"; done
`)
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook, dir, "two words"}, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)

	args := strings.Split(strings.TrimSuffix(waitFile(t, filepath.Join(dir, "args"), time.Second), "\x00"), "\x00")
	wantArgs := []string{dir, "two words", "renew-failed", "example.com-ecdsa-p256", "example.com", "www.example.com"}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("arguments\n got %q\nwant %q", args, wantArgs)
	}
	var ours []string
	inherited := false
	for _, kv := range strings.Split(strings.TrimSuffix(waitFile(t, filepath.Join(dir, "env"), time.Second), "\x00"), "\x00") {
		if strings.HasPrefix(kv, "TLSPILOT_") {
			ours = append(ours, kv)
		}
		inherited = inherited || kv == "NOTIFY_TEST_INHERITED=yes"
	}
	slices.Sort(ours)
	wantEnv := []string{
		"TLSPILOT_ATTEMPT=3",
		"TLSPILOT_CERT_ID=example.com-ecdsa-p256",
		"TLSPILOT_ERROR=obtain example.com: line one\nline 'two' with \"quotes\" and $HOME",
		"TLSPILOT_EVENT=renew-failed",
		"TLSPILOT_KEY_TYPE=ecdsa-p256",
		"TLSPILOT_NAMES=example.com www.example.com",
		"TLSPILOT_NOT_AFTER=2026-03-01T12:00:00Z",
		"TLSPILOT_RETRY_AT=2026-02-20T07:15:00Z",
		"TLSPILOT_TIME=2026-02-20T07:00:00Z",
	}
	if !slices.Equal(ours, wantEnv) {
		t.Errorf("environment\n got %q\nwant %q", ours, wantEnv)
	}
	if !inherited {
		t.Error("the daemon's environment was not inherited")
	}
	if got := strings.TrimSpace(waitFile(t, filepath.Join(dir, "stdin"), time.Second)); got != "/dev/null" {
		t.Errorf("stdin is %q, want /dev/null", got)
	}
	pid, pgrp := waitFile(t, filepath.Join(dir, "pid"), time.Second), waitFile(t, filepath.Join(dir, "pgrp"), time.Second)
	if pid != pgrp {
		t.Errorf("process group %s, want its own (%s)", strings.TrimSpace(pgrp), strings.TrimSpace(pid))
	}
	if r := l.records(t, "notify command done"); len(r) != 1 || r[0]["exit_code"] != 0.0 {
		t.Errorf("log: %s", l)
	}
}

// TestCommandEmptyFields: an event without expiry, error or retry gets
// empty variables, all still set.
func TestCommandEmptyFields(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", `env | grep ^TLSPILOT_ | sort > "$1/env.tmp" && mv "$1/env.tmp" "$1/env"`+"\n")
	n := newNotifier(t, Options{Command: []string{hook, dir}})
	n.Notify(tlspilot.Event{Type: tlspilot.EventRevoked, CertID: "a.example-rsa2048", Names: []string{"a.example"},
		KeyType: "rsa2048", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	closeWithin(t, n, 30*time.Second)
	want := `TLSPILOT_ATTEMPT=0
TLSPILOT_CERT_ID=a.example-rsa2048
TLSPILOT_ERROR=
TLSPILOT_EVENT=revoked
TLSPILOT_KEY_TYPE=rsa2048
TLSPILOT_NAMES=a.example
TLSPILOT_NOT_AFTER=
TLSPILOT_RETRY_AT=
TLSPILOT_TIME=2026-01-02T03:04:05Z
`
	if got := waitFile(t, filepath.Join(dir, "env"), time.Second); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestLoadedIsNotNotified: only the six documented events reach hooks.
func TestLoadedIsNotNotified(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", `echo "$1" >> "`+dir+`/events"`+"\n")
	n := newNotifier(t, Options{Command: []string{hook}})
	for _, typ := range []tlspilot.EventType{tlspilot.EventLoaded, tlspilot.EventObtained, tlspilot.EventRenewed,
		tlspilot.EventFailed, tlspilot.EventExpiring, tlspilot.EventExpired, tlspilot.EventRevoked} {
		n.Notify(tlspilot.Event{Type: typ, CertID: "a", Names: []string{"a.example"}})
	}
	closeWithin(t, n, 30*time.Second)
	got := strings.Fields(waitFile(t, filepath.Join(dir, "events"), time.Second))
	slices.Sort(got)
	want := []string{"expired", "expiring", "obtained", "renew-failed", "renewed", "revoked"}
	if !slices.Equal(got, want) {
		t.Errorf("notified %q, want %q", got, want)
	}
}

// TestFailingCommandLogged: a non-zero exit is logged at ERROR with the
// exit code and the output.
func TestFailingCommandLogged(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", "echo 'to stdout'\necho 'mail server refused: 550 no such user' >&2\nexit 3\n")
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook}, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	r := l.records(t, "notify command failed")
	if len(r) != 1 {
		t.Fatalf("log:\n%s", l)
	}
	want := map[string]any{"level": "ERROR", "hook": "command", "event": "renew-failed", "cert": "example.com-ecdsa-p256",
		"program": hook, "exit_code": 3.0, "output": "to stdout\nmail server refused: 550 no such user\n", "error": "exit status 3"}
	for k, v := range want {
		if r[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[0][k], v)
		}
	}

	// A program that cannot be started is logged the same way.
	l = &logs{}
	n = newNotifier(t, Options{Command: []string{filepath.Join(dir, "missing")}, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if r := l.records(t, "notify command failed"); len(r) != 1 || !strings.Contains(r[0]["error"].(string), "no such file") {
		t.Errorf("log:\n%s", l)
	}
}

// TestOutputBounded: a chatty hook's output is cut at 4 KiB in the log.
func TestOutputBounded(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", "head -c 100000 /dev/zero | tr '\\0' x\nexit 1\n")
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook}, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	r := l.records(t, "notify command failed")
	if len(r) != 1 || r[0]["output"] != strings.Repeat("x", maxOutput)+"… (95904 more bytes)" {
		t.Errorf("log:\n%.300s", l)
	}
}

// TestCommandTimeoutKillsGroup: a hook that runs past its timeout is
// killed with the child it started, and the kill is logged with its
// output.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", `echo "waiting for a server that never answers"
sleep 300 &
echo $! > "$1/child.tmp" && mv "$1/child.tmp" "$1/child"
echo $$ > "$1/pid.tmp" && mv "$1/pid.tmp" "$1/pid"
wait
`)
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook, dir}, Timeout: time.Second, Logger: l.logger()})
	start := time.Now()
	n.Notify(failed())
	pid, child := pidIn(t, filepath.Join(dir, "pid")), pidIn(t, filepath.Join(dir, "child"))
	closeWithin(t, n, 30*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hook ran %v, with a timeout of 1s", d)
	}
	waitDead(t, 5*time.Second, pid, child)
	r := l.records(t, "notify command timed out: killed with its process group")
	if len(r) != 1 || r[0]["level"] != "ERROR" || r[0]["exit_code"] != -1.0 || r[0]["timeout"] != float64(time.Second) ||
		r[0]["output"] != "waiting for a server that never answers\n" {
		t.Errorf("log:\n%s", l)
	}
}

// TestLeftoverChildKilled: a hook that exits at once but leaves a child
// running (holding its output open) does not hold a worker: the child is
// killed when the hook exits.
func TestLeftoverChildKilled(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", `sleep 300 &
echo $! > "$1/child.tmp" && mv "$1/child.tmp" "$1/child"
`)
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook, dir}, Logger: l.logger()})
	start := time.Now()
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hook held its worker %v", d)
	}
	waitDead(t, 5*time.Second, pidIn(t, filepath.Join(dir, "child")))
	if r := l.records(t, "notify command done"); len(r) != 1 {
		t.Errorf("log:\n%s", l)
	}
}

// TestCommandHidesSecretEnv: a variable tlspilot reads a secret from
// (Options.HideEnv: tsig_secret_env) is not passed to the command; the
// rest of the environment is.
func TestCommandHidesSecretEnv(t *testing.T) {
	t.Setenv("NOTIFY_TEST_TSIG", "c2VjcmV0")
	t.Setenv("NOTIFY_TEST_INHERITED", "yes")
	dir := t.TempDir()
	hook := script(t, dir, "hook", `env > "$1/env.tmp"; mv "$1/env.tmp" "$1/env"`)
	n := newNotifier(t, Options{Command: []string{hook, dir}, HideEnv: []string{"NOTIFY_TEST_TSIG"}})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	env := waitFile(t, filepath.Join(dir, "env"), time.Second)
	if strings.Contains(env, "NOTIFY_TEST_TSIG") || !strings.Contains(env, "NOTIFY_TEST_INHERITED=yes") {
		t.Errorf("environment of the hook:\n%s\nwant NOTIFY_TEST_INHERITED and not NOTIFY_TEST_TSIG", env)
	}
}
