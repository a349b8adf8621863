package testenv

import "syscall"

// dieWithParent makes the kernel stop the server (SIGQUIT: immediate
// shutdown) if the test process dies without cleaning up, say killed by
// go test's timeout, so that no server outlives it.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
