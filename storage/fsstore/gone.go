package fsstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrGone is wrapped by the error of every method of a Store whose data
// folder is missing or is no longer the folder New opened: the storage
// directory was moved or deleted, the volume holding it was unmounted
// (leaving an empty mount point) or another one mounted in its place. It
// never satisfies errors.Is(err, fs.ErrNotExist), so callers that read a
// missing key as "nothing stored yet" see the storage down instead of
// empty. New creates a missing storage; an open Store never recreates it,
// and works again once the same folder is back (moved back, or its volume
// mounted again, except on FUSE, where each mount is a new file system).
// Using another folder found at the path needs a new Store.
var ErrGone = errors.New("fsstore: storage directory gone")

// checkData returns an error wrapping ErrGone unless the data folder is
// still the one New opened. A folder on a file system whose inode numbers
// may change (FUSE ones such as exfat-fuse, the kernel's FAT and exFAT,
// CIFS with noserverino: they number a folder afresh once the kernel
// forgot it) is judged by its file system alone; on the others, by its
// inode too.
func (s *Store) checkData() error {
	fi, err := os.Stat(s.dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// %v, not %w: a vanished storage must not read as a missing key.
		return fmt.Errorf("%w: %s is missing (moved, deleted, or its volume unmounted?): %v", ErrGone, s.dataDir, err)
	case err != nil:
		return fmt.Errorf("check %s: %w", s.dataDir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is no longer a folder", ErrGone, s.dataDir)
	case !s.stableInodes && !sameDevice(fi, s.dataFI), s.stableInodes && !os.SameFile(fi, s.dataFI):
		return fmt.Errorf("%w: %s is not the folder opened at start (another volume mounted there, or a new folder); restart to use it",
			ErrGone, s.dataDir)
	}
	return nil
}

// goneOr returns the checkData error if err, which a file operation in
// the data folder returned, may be due to the storage vanishing meanwhile
// (a path that does not exist), and err otherwise.
func (s *Store) goneOr(err error) error {
	if notExist(err) {
		if gerr := s.checkData(); gerr != nil {
			return gerr
		}
	}
	return err
}

// openedData records the data folder New opened, for checkData.
func (s *Store) openedData() error {
	fi, err := os.Stat(s.dataDir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", s.dataDir)
	}
	s.dataFI, s.stableInodes = fi, stableInodes(s.dataDir)
	return nil
}
