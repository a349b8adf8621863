package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestReviewWritablePIDFileRefused: a pidfile of root's that others may
// write (a daemon started with umask 0 leaves it 0666; one of mode 0664
// has a group of users) lets any of them name any process, as a pidfile
// of theirs would: tlspilot, as root, must not signal what it names.
// Written only by root, or by a group of root's, it is signalled.
func TestReviewWritablePIDFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: pidfiles of root's")
	}
	for _, tt := range []struct {
		name      string
		mode      os.FileMode
		gid       int
		signalled bool
	}{
		{"0644", 0o644, 0, true},
		{"0664, root's group", 0o664, 0, true},
		{"0666", 0o666, 0, false},
		{"0664, another group", 0o664, 65534, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, done := sleeper(t, 0)
			pidfile := filepath.Join(t.TempDir(), "daemon.pid")
			if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(pidfile, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(pidfile, 0, tt.gid); err != nil {
				t.Fatal(err)
			}
			f := newFiles(t, Options{Privkey: "/x/k", Signal: syscall.SIGTERM, PIDFile: pidfile})
			err := f.Reload(t.Context())
			t.Logf("Reload: %v", err)
			if got := terminated(done); got != tt.signalled {
				t.Errorf("process signalled: %v, want %v", got, tt.signalled)
			}
			if !tt.signalled && (err == nil || !strings.Contains(err.Error(), "writable by")) {
				t.Errorf("Reload = %v; want it refused as writable by others", err)
			}
		})
	}
}
