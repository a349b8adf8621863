package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// existing is the file found at a deploy path, opened for comparison.
type existing struct {
	f  *os.File
	st *syscall.Stat_t
}

// openExisting opens what sits at path, in the folder dir, for reading,
// without following a symbolic link and without blocking. It returns nil
// (and no error) when there is nothing there that may be compared,
// chmodded or chowned: nothing at all, a symbolic link, anything but a
// regular file, a regular file with other hard links, or one under a
// write lease (F_SETLEASE, which its owner may take: O_NONBLOCK makes
// the open fail at once there, as on a FIFO, where it would wait). Such
// an entry is replaced by a rename, never written or changed through:
// the folder may be writable by the service user (PostgreSQL's data
// directory), who could otherwise point the path at another file, swap
// it between the comparison and a chown done by path, or fail every
// deploy. The error is that of the open (a permission error: the file
// cannot be compared).
func openExisting(dir *os.File, path string) (*existing, error) {
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENXIO),
		errors.Is(err, syscall.EWOULDBLOCK):
		return nil, nil
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	e := &existing{f: os.NewFile(uintptr(fd), path), st: new(syscall.Stat_t)}
	if err := syscall.Fstat(fd, e.st); err != nil {
		e.close()
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if e.st.Mode&syscall.S_IFMT != syscall.S_IFREG || e.st.Nlink != 1 {
		e.close()
		return nil, nil
	}
	return e, nil
}

// holdsData reports whether the file holds exactly data, reading at most
// one byte more.
func (e *existing) holdsData(data []byte) (bool, error) {
	if e.st.Size != int64(len(data)) {
		return false, nil
	}
	b, err := io.ReadAll(io.LimitReader(e.f, int64(len(data))+1))
	if err != nil {
		return false, fmt.Errorf("deploy %s: %w", e.f.Name(), err)
	}
	return bytes.Equal(b, data), nil
}

// mode returns the file's permission bits.
func (e *existing) mode() fs.FileMode { return fs.FileMode(e.st.Mode) & fs.ModePerm }

// close closes the file.
func (e *existing) close() { _ = e.f.Close() }
