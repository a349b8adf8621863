//go:build !linux

package testenv

import "os/exec"

// killWithParent does nothing where the kernel offers no parent-death
// signal.
func killWithParent(*exec.Cmd) {}
