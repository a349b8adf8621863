//go:build unix

package exec_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/exec"
)

// TestTrialFailureNearTimeoutNotKilled: a hook that exits 1 on its own,
// leaving a child that holds its standard error, is waited for a second
// more (waitDelay); when that second ran past the timeout, the error
// said the hook was "killed after" the timeout, though it had exited
// with its own status: the deadline was looked at, not how it ended.
func TestTrialFailureNearTimeoutNotKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	hook := script(t, "sleep 20 &\necho $! > "+pidFile+"\necho zone refused >&2\nexit 1\n")
	p, err := exec.New(exec.Options{Command: hook, Timeout: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Present(t.Context(), []dns01.Record{{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v"}})
	killAtEnd(t, childPid(t, pidFile))
	if err == nil || strings.Contains(err.Error(), "killed after") || !strings.Contains(err.Error(), "exit status 1: zone refused") {
		t.Errorf("error = %v, want the hook's exit status and standard error, not a time-out", err)
	}
}
