//go:build !unix

package fsstore

import (
	"io/fs"
	"os"
)

// openFlags open a value for reading (see stat_unix.go: elsewhere a
// link is followed, and readFile refuses what is not a regular file).
const openFlags = os.O_RDONLY

// isLinkLoop reports false: links are not refused at open here.
func isLinkLoop(error) bool { return false }

// fileGID cannot tell a file's group without Unix permissions: values
// then stay private (see grant).
func fileGID(fs.FileInfo) (int, bool) { return 0, false }

// sameDevice falls back to comparing the folders themselves.
func sameDevice(a, b fs.FileInfo) bool { return os.SameFile(a, b) }
