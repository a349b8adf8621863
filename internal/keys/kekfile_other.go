//go:build !unix

package keys

import "io/fs"

// sharedByRoot reports false: without Unix owners a group-readable KEK
// file is never accepted.
func sharedByRoot(fs.FileInfo) bool { return false }
