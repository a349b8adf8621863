//go:build unix

package fsstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// openValue opens the file rel names below the folder dir for reading,
// one name at a time (openat), following a symbolic link at none of
// them (ELOOP), neither at the value's name nor at a folder's: a link
// put in place of a folder led out of the storage. dir itself may be a
// link. A FIFO is opened without waiting for a writer; readFile then
// refuses it. A folder is opened with folderFlags: search permission on
// it is enough, as it was for a path.
func openValue(dir, rel string) (*os.File, error) {
	fd, err := openNoEINTR(unix.AT_FDCWD, dir, folderFlags)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	names := strings.Split(rel, string(filepath.Separator))
	for i, name := range names {
		flags := folderFlags | unix.O_NOFOLLOW
		if i == len(names)-1 {
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK
		}
		next, err := openNoEINTR(fd, name, flags)
		if err != nil && !errors.Is(err, unix.ENOENT) && isLink(fd, name) {
			// Linux says ENOTDIR of a link opened O_DIRECTORY, FreeBSD
			// EMLINK of one opened O_NOFOLLOW: one error for both.
			err = unix.ELOOP
		}
		unix.Close(fd)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, filepath.Join(names[:i+1]...)), Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, rel)), nil
}

// openNoEINTR is openat(2), made again when a signal interrupted it (as
// os.OpenFile does: on FUSE an open can be interrupted).
func openNoEINTR(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// isLink reports whether name in the folder dirfd is a symbolic link.
func isLink(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// isLinkLoop reports whether err is the refusal of openValue to open a
// symbolic link.
func isLinkLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// fileGID returns the group that owns the file fi describes.
func fileGID(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Gid), true
}

// sameDevice reports whether a and b are on the same file system.
func sameDevice(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}
