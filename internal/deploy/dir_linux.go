package deploy

import "golang.org/x/sys/unix"

// walkFlag opens the folders on the way to a deploy folder: O_PATH needs
// only search permission, as path resolution does (/etc/ssl/private is
// root:ssl-cert 0710).
const walkFlag = unix.O_PATH
