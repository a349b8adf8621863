//go:build !unix

package keys

import (
	"io/fs"
	"os"
)

// kekOpenFlags open the KEK file for reading.
const kekOpenFlags = os.O_RDONLY

// sharedByRoot reports false: without Unix owners a group-readable KEK
// file is never accepted.
func sharedByRoot(fs.FileInfo) bool { return false }
