//go:build unix && !linux

package deploy

import "golang.org/x/sys/unix"

// walkFlag opens the folders on the way to a deploy folder. Without
// Linux's O_PATH, each needs read permission besides search.
const walkFlag = unix.O_RDONLY
