//go:build !unix

package notify

import "os/exec"

// ownGroup does nothing where there are no process groups: cancelling
// cmd kills the program only, not its children.
func ownGroup(*exec.Cmd) {}

// killGroup does nothing where there are no process groups.
func killGroup(*exec.Cmd) {}
