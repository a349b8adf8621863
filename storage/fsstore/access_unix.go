//go:build unix

package fsstore

import "syscall"

// mayWrite asks the kernel whether the process may write path, and search
// it if it is a folder.
func mayWrite(path string, folder bool) error {
	mode := uint32(0o2) // W_OK
	if folder {
		mode |= 0o1 // X_OK
	}
	return syscall.Access(path, mode)
}
