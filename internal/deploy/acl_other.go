//go:build unix && !linux

package deploy

import "os"

// dropInheritedACL does nothing outside Linux (whose POSIX default ACLs
// are what it removes there).
func dropInheritedACL(dir, t *os.File) error { return nil }
