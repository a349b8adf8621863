//go:build unix

package exec_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/exec"
)

// childPid waits for the hook to write the pid of the child it started
// to path.
func childPid(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("the hook wrote no pid to %s", path)
	return 0
}

// gone reports whether pid has ended within a few seconds: it no longer
// exists, or is a zombie waiting for a parent (PID 1 in a container) to
// reap it.
func gone(t *testing.T, pid int) bool {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return true
			}
		}
	}
	return false
}

// killAtEnd kills pid when the test ends, should the code under test
// have left it running.
func killAtEnd(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

// TestTimeoutKillsChildren: a hook that started a child and then hangs is
// killed at the timeout with the child, not the hook alone.
func TestTimeoutKillsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	hook := script(t, "sleep 300 &\necho $! > "+pidFile+"\nsleep 300\n")
	p, err := exec.New(exec.Options{Command: hook, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Present(t.Context(), []dns01.Record{{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v"}})
	pid := childPid(t, pidFile)
	killAtEnd(t, pid)
	if err == nil || !strings.Contains(err.Error(), "killed after 500ms") {
		t.Fatalf("error = %v, want it killed at the timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Present took %v with a 500ms timeout", d)
	}
	if !gone(t, pid) {
		t.Errorf("the hook's child %d (sleep 300) still runs after the timeout", pid)
	}
}

// TestExitZeroWithChildHoldingStderr: a hook that exits 0 while a child it
// started in the background holds its standard error succeeds, with a
// warning in the log, and the child is killed.
func TestExitZeroWithChildHoldingStderr(t *testing.T) {
	dir := t.TempDir()
	pidFile, calls := filepath.Join(dir, "pid"), filepath.Join(dir, "calls")
	hook := script(t, "echo \"$1 $3\" >> "+calls+"\nsleep 20 &\necho $! > "+pidFile+"\nexit 0\n")
	var log bytes.Buffer
	p, err := exec.New(exec.Options{Command: hook, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Present(t.Context(), []dns01.Record{{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v"}})
	pid := childPid(t, pidFile)
	killAtEnd(t, pid)
	if err != nil {
		t.Fatalf("a hook that exited 0 failed: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Present took %v: it waited for the child", d)
	}
	if got, _ := os.ReadFile(calls); string(got) != "present v\n" {
		t.Errorf("calls = %q", got)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "left a process holding its standard error open") {
		t.Errorf("log = %q, want a warning about the process left holding standard error", log.String())
	}
	if !gone(t, pid) {
		t.Errorf("the hook's child %d (sleep 20) still runs after the hook exited", pid)
	}
}
