//go:build !unix

package fsstore

import (
	"io/fs"
	"os"
	"path/filepath"
)

// openValue opens the file rel names below dir for reading (see
// stat_unix.go: elsewhere a link is followed, and readFile refuses what
// is not a regular file).
func openValue(dir, rel string) (*os.File, error) {
	return os.Open(filepath.Join(dir, rel))
}

// isLinkLoop reports false: links are not refused at open here.
func isLinkLoop(error) bool { return false }

// fileGID cannot tell a file's group without Unix permissions: values
// then stay private (see grant).
func fileGID(fs.FileInfo) (int, bool) { return 0, false }

// sameDevice falls back to comparing the folders themselves.
func sameDevice(a, b fs.FileInfo) bool { return os.SameFile(a, b) }
