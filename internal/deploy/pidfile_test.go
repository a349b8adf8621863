package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPIDFileSignal: the signal goes to the process on the pidfile's
// first line (PostgreSQL's postmaster.pid has more), and only to a
// process the pidfile's owner could signal itself: the pidfile of a
// service (postmaster.pid is postgres's, in a folder postgres writes) is
// the service user's to write, who could otherwise have tlspilot, as
// root, stop sshd. A pidfile that is a symbolic link is not read.
func TestPIDFileSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: processes and pidfiles of another user")
	}
	for _, tt := range []struct {
		name       string
		procUID    int // the process runs as
		fileUID    int // the pidfile belongs to
		link       bool
		postmaster bool // the pidfile has postmaster.pid's lines after the id
		signalled  bool
		errContain string
	}{
		{"root's postmaster.pid", 0, 0, false, true, true, ""},
		{"service user's pidfile, its own process", 65534, 65534, false, false, true, ""},
		{"service user's pidfile, root's process", 0, 65534, false, false, false, "belongs to uid 65534, but process"},
		{"symbolic link", 0, 0, true, false, false, "not a regular file of its own"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, done := sleeper(t, tt.procUID)
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "postmaster.pid")
			content := strconv.Itoa(cmd.Process.Pid) + "\n"
			if tt.postmaster {
				content += dir + "\n1764590000\n5432\n/run/postgresql\n127.0.0.1\n  5432001  0\nready\n"
			}
			target := pidfile
			if tt.link {
				target = filepath.Join(dir, "elsewhere.pid")
				if err := os.Symlink(target, pidfile); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(target, tt.fileUID, tt.fileUID); err != nil {
				t.Fatal(err)
			}
			f := newFiles(t, Options{Privkey: "/x/k", Signal: syscall.SIGTERM, PIDFile: pidfile})
			err := f.Reload(t.Context())
			if tt.signalled != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.errContain) {
				t.Errorf("Reload: %v", err)
			}
			if got := terminated(done); got != tt.signalled {
				t.Errorf("process signalled: %v, want %v", got, tt.signalled)
			}
		})
	}
}

// sleeper starts a process running as uid, killed at cleanup; the
// channel gets how it ended.
func sleeper(t *testing.T, uid int) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, done
}

// terminated reports whether the process ended by SIGTERM within 2 s.
func terminated(done <-chan error) bool {
	select {
	case err := <-done:
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM
	case <-time.After(2 * time.Second):
		return false
	}
}
