package deploy

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestReviewSignalAfterPIDReused: the pidfile's owner (a service user)
// writes its own process's id, which passes the check, and ends that
// process right after it: should the id go to a root process before the
// signal is sent, that process must not get it. Here the id is handed to
// a root process on purpose (through /proc/sys/kernel/ns_last_pid) in
// the window between the check and the signal.
func TestReviewSignalAfterPIDReused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: processes of another user, ns_last_pid")
	}
	svc, svcDone := sleeper(t, 65534)
	pid := svc.Process.Pid
	var rootDone <-chan error
	err := signalChecked(pid, syscall.SIGTERM, func() error {
		if err := processOf(pid, &syscall.Stat_t{Uid: 65534, Gid: 65534, Mode: 0o644}, "app.pid"); err != nil {
			return err
		}
		_ = svc.Process.Kill()
		<-svcDone
		rootDone = sleeperAtPID(t, pid)
		return nil
	})
	t.Logf("signalChecked: %v", err)
	if err == nil {
		t.Error("signalChecked = nil; want an error: the process checked has ended")
	}
	if terminated(rootDone) {
		t.Error("the root process that took the checked process's id got the signal")
	}
}

// sleeperAtPID starts a root process with process id pid, which must be
// free, retrying while other processes take it first.
func sleeperAtPID(t *testing.T, pid int) <-chan error {
	t.Helper()
	for range 50 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		cmd, done := sleeper(t, 0)
		if cmd.Process.Pid == pid {
			return done
		}
		_ = cmd.Process.Kill()
		<-done
	}
	t.Fatalf("could not start a process with id %d", pid)
	return nil
}
