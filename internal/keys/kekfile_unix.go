//go:build unix

package keys

import (
	"io/fs"
	"os"
	"syscall"
)

// kekOpenFlags open the KEK file without waiting for a writer when it is
// a FIFO, which readKEK then refuses as not a regular file.
const kekOpenFlags = os.O_RDONLY | syscall.O_NONBLOCK

// sharedByRoot reports whether the file belongs to root and to a group
// other than root's.
func sharedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && st.Gid != 0
}
