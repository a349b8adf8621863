//go:build unix

// Package procgroup runs a command as the leader of its own process
// group, so that stopping it stops what it started too: the hooks and
// reload commands tlspilot runs (notify, dns-01 exec hooks, deploy).
package procgroup

import (
	"os/exec"
	"syscall"
)

// Own makes cmd the leader of a new process group, and cancelling it
// (its context's end) kill the whole group with SIGKILL, so that its
// children (a hung curl or nsupdate) die with it. Call it before Start.
func Own(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// Kill kills whatever is left of cmd's process group after cmd exited.
// The group's id cannot be reused while any member lives.
func Kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
