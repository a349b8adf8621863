//go:build unix

package notify

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a new process group, and cancelling
// it kill the whole group, so a hook's children die with it.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killGroup kills whatever is left of cmd's process group after cmd
// exited. The group's id cannot be reused while any member lives.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
