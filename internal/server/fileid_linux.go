package server

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// idOf identifies a version of a file from its stat.
func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev:   uint64(st.Dev),
		ino:   uint64(st.Ino),
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}, true
}

// statDir opens the directory at path for statID and checks that it is
// the directory want (a stat of the os.Root opened from the same path)
// describes; it returns -1 when it cannot, and statID is then not used.
func statDir(path string, want fs.FileInfo) int {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		unix.Close(fd)
		return -1
	}
	w, ok := want.Sys().(*syscall.Stat_t)
	if !ok || uint64(w.Dev) != uint64(st.Dev) || uint64(w.Ino) != uint64(st.Ino) {
		unix.Close(fd)
		return -1
	}
	return fd
}

// closeStatDir closes what statDir opened.
func closeStatDir(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// statID identifies the file that name (relative) names below the
// directory dirfd with one fstatat(2). The kernel walks the path and
// follows symbolic links but in the last component, so the answer is
// only good for comparing with the fileID of a file opened through the
// os.Root: equal, it is that very file (fileCache.fresh).
func statID(dirfd int, name string) (fileID, bool) {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return fileID{}, false
	}
	return fileID{
		dev:   uint64(st.Dev),
		ino:   uint64(st.Ino),
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}, true
}
