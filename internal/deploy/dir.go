package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symbolic links followed to reach a deploy folder,
// as the kernel's own limit (ELOOP) does.
const maxLinks = 40

// openDir opens the deploy folder dir (absolute), walking it from the
// root one component at a time, and follows a symbolic link on the way
// only when root or the running user owns it. A folder the service user
// may write often sits on the path (Debian's /var/lib/postgresql/16 is
// postgres's, above the data directory where server.key goes); its owner
// could replace the next folder by a link to /etc or /root, and have
// tlspilot, running as root to give the files away, create files it then
// owns there, or replace another program's. The files are then created,
// renamed and synced through the returned descriptor, so the folder
// checked is the folder written. On Linux the descriptor is O_PATH: it
// asks search permission only, as path resolution does (a pidfile in a
// folder of mode 0711), and syncDir opens the folder for reading.
func openDir(dir string) (*os.File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("deploy folder %s: not an absolute path", dir)
	}
	fd, err := unix.Open("/", walkFlag|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	rest, walked, links := strings.Split(dir, "/"), "/", 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		walked = filepath.Join(walked, c)
		next, target, err := step(fd, c, walked)
		switch {
		case err != nil:
			unix.Close(fd)
			return nil, err
		case target == "":
			unix.Close(fd)
			fd = next
			continue
		}
		if links++; links > maxLinks {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "open", Path: dir, Err: unix.ELOOP}
		}
		if filepath.IsAbs(target) {
			unix.Close(fd)
			if fd, err = unix.Open("/", walkFlag|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
			}
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// step opens the component c of the folder at fd without following it.
// It returns the descriptor of a folder, or the target of a symbolic
// link that root or the running user owns and that has no other name
// (walked names it in errors).
func step(fd int, c, walked string) (next int, target string, err error) {
	next, err = unix.Openat(fd, c, walkFlag|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		return next, "", nil
	}
	var st unix.Stat_t
	if serr := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return -1, "", &fs.PathError{Op: "open", Path: walked, Err: err}
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return -1, "", fmt.Errorf("deploy folder: %s is a symbolic link owned by uid %d, neither root nor tlspilot's uid %d: "+
			"not followed, as its owner could point it at any folder", walked, st.Uid, os.Geteuid())
	}
	if st.Nlink > 1 {
		// The owner of the folder it is in may have hard-linked a link
		// of root's there (where fs.protected_hardlinks is 0).
		return -1, "", fmt.Errorf("deploy folder: %s is a symbolic link with %d names: "+
			"not followed, as the owner of a folder it is in could have linked it there", walked, st.Nlink)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, c, buf)
	if err == nil && n == len(buf) {
		err = unix.ENAMETOOLONG
	}
	var again unix.Stat_t
	if err == nil && (unix.Fstatat(fd, c, &again, unix.AT_SYMLINK_NOFOLLOW) != nil || again.Ino != st.Ino || again.Dev != st.Dev) {
		err = unix.EAGAIN // replaced while it was read
	}
	if err != nil {
		return -1, "", &fs.PathError{Op: "readlink", Path: walked, Err: err}
	}
	return -1, string(buf[:n]), nil
}

// syncDir syncs the folder d (openDir's), opening it for reading
// (Linux's O_PATH descriptor cannot be synced), so that the renames in
// it survive a crash.
func syncDir(d *os.File) error {
	fd, err := unix.Openat(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: d.Name(), Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &fs.PathError{Op: "sync", Path: d.Name(), Err: err}
	}
	return nil
}

// createTemp creates a new file of mode 0600 named after base in the
// folder d, which no one else can have opened.
func createTemp(d *os.File, base string) (*os.File, string, error) {
	for range 10 {
		var r [8]byte
		_, _ = rand.Read(r[:])
		name := "." + base + ".tmp-" + hex.EncodeToString(r[:])
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", &fs.PathError{Op: "create", Path: filepath.Join(d.Name(), name), Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.Name(), name)), name, nil
	}
	return nil, "", fmt.Errorf("create a temporary file in %s: names taken", d.Name())
}
