package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTrialReloadDaemonNearTimeout: a reload command that exits 0
// leaving a daemon holding its output open succeeds, yet when the
// second waited for that output (WaitDelay) ran past the reload's
// timeout, the reload was reported "timed out": the deadline was
// checked after the wait whatever the outcome, though nothing was
// stopped. One that exits 1 so was reported "timed out" too, without
// its exit status and its output. Only a command the deadline stopped
// timed out.
func TestTrialReloadDaemonNearTimeout(t *testing.T) {
	for name, tc := range map[string]struct {
		exit string
		want string // in the error; "" for none
	}{
		"exit 0": {exit: "0"},
		"exit 1": {exit: "1", want: "exit status 1: not reloaded"},
	} {
		t.Run(name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "daemon.pid")
			f := newFiles(t, Options{Privkey: "/x/k", ReloadTimeout: 900 * time.Millisecond,
				Reload: []string{"sh", "-c", "sleep 30 & echo $! > " + pidfile + "; echo not reloaded; exit " + tc.exit}})
			err := f.Reload(t.Context())
			if b, rerr := os.ReadFile(pidfile); rerr == nil {
				if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
					t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("reload that exited 0 leaving a daemon: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("reload that exited 1 leaving a daemon: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
