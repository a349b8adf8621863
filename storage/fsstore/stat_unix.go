//go:build unix

package fsstore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openFlags open a value without following a symbolic link at its name
// (ELOOP) and without blocking on a FIFO, which readFile then refuses.
const openFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// isLinkLoop reports whether err is the refusal of openFlags to open a
// symbolic link.
func isLinkLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// fileGID returns the group that owns the file fi describes.
func fileGID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Gid), true
}

// sameDevice reports whether a and b are on the same file system.
func sameDevice(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}
