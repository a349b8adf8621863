//go:build unix

package exec

import (
	osexec "os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a new process group, and cancelling
// it (the timeout, or the caller's ctx) kill the whole group, so that the
// hook's children (a hung curl or nsupdate) die with it. As in
// internal/notify.
func ownGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killGroup kills whatever is left of cmd's process group after cmd
// exited. The group's id cannot be reused while any member lives.
func killGroup(cmd *osexec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
