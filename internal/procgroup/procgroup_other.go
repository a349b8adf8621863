//go:build !unix

// Package procgroup runs a command as the leader of its own process
// group, so that stopping it stops what it started too.
package procgroup

import "os/exec"

// Own does nothing where there are no process groups: cancelling cmd
// kills the program only, not its children.
func Own(*exec.Cmd) {}

// Kill does nothing where there are no process groups.
func Kill(*exec.Cmd) {}
