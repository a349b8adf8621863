package server

import (
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// idOf identifies a version of a file from its stat.
func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano(), st.Ctim.Nano()}, true
}

// statDir opens the directory at path for statID and checks that it is
// the directory want (a stat of the os.Root opened from the same path)
// describes; it returns nil when it cannot, and statID is then not used.
func statDir(path string, want fs.FileInfo) *os.File {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	w, ok := want.Sys().(*syscall.Stat_t)
	if unix.Fstat(fd, &st) != nil || !ok || uint64(w.Dev) != uint64(st.Dev) || uint64(w.Ino) != uint64(st.Ino) {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), path)
}

// noOpenat2 is set once openat2(2) turned out to be missing (Linux
// before 5.6): nested names then always take the os.Root path.
var noOpenat2 atomic.Bool

// statID identifies the file that name (relative, clean) names below
// the directory dirfd, for comparing with the fileID of a file opened
// through the os.Root (fileCache.fresh). It follows the rule os.Root
// does: a name of one component is one fstatat(2), which does not follow
// a symbolic link; a longer one is resolved by openat2(2) with
// RESOLVE_BENEATH, which refuses any path, through symbolic links
// included, that leaves the directory, then fstat(2) and close(2): three
// system calls however deep the name, where os.Root opens and closes
// every directory on the way.
func statID(dirfd int, name string) (fileID, bool) {
	var st unix.Stat_t
	if strings.IndexByte(name, '/') < 0 {
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			return fileID{}, false
		}
		return statFileID(&st), true
	}
	if noOpenat2.Load() {
		return fileID{}, false
	}
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if err == unix.ENOSYS {
			noOpenat2.Store(true)
		}
		return fileID{}, false
	}
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return fileID{}, false
	}
	return statFileID(&st), true
}

// statFileID is idOf for x/sys's stat (the same fields as syscall's).
func statFileID(st *unix.Stat_t) fileID {
	return fileID{uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}
