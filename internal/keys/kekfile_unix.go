//go:build unix

package keys

import (
	"io/fs"
	"syscall"
)

// sharedByRoot reports whether the file belongs to root and to a group
// other than root's.
func sharedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && st.Gid != 0
}
