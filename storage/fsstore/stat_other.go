//go:build !unix

package fsstore

import (
	"io/fs"
	"os"
)

// fileGID cannot tell a file's group without Unix permissions: values
// then stay private (see grant).
func fileGID(fs.FileInfo) (int, bool) { return 0, false }

// sameDevice falls back to comparing the folders themselves.
func sameDevice(a, b fs.FileInfo) bool { return os.SameFile(a, b) }
