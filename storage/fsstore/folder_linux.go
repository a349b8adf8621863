package fsstore

import "golang.org/x/sys/unix"

// folderFlags open a folder openValue walks through: O_PATH needs only
// search permission on it, as a lookup through its path does, not the
// read permission a folder made search-only (0711) does not give.
const folderFlags = unix.O_PATH | unix.O_DIRECTORY
