//go:build unix && !linux

package fsstore

import "golang.org/x/sys/unix"

// folderFlags open a folder openValue walks through (see
// folder_linux.go: without O_PATH, read permission on it is needed).
const folderFlags = unix.O_RDONLY | unix.O_DIRECTORY
