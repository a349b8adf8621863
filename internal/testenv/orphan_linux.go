package testenv

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill cmd's process (SIGKILL) if the
// test process dies without cleaning up, say killed by go test's
// timeout, so that no responder, DNS server or CA outlives it (orphaned
// `openssl ocsp` responders were seen spinning at 20–45% CPU). Call it
// before cmd.Start.
func killWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
