//go:build !unix

package exec

import osexec "os/exec"

// ownGroup does nothing where there are no process groups: cancelling
// cmd kills the program only, not its children.
func ownGroup(*osexec.Cmd) {}

// killGroup does nothing where there are no process groups.
func killGroup(*osexec.Cmd) {}
