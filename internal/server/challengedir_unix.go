//go:build unix

package server

import "syscall"

// answerOpenFlags open an answer file without following a symbolic link
// in its last element and without blocking on a FIFO.
const answerOpenFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
