package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// kekSettle is how long a reader waits for an empty KEK file, which may be
// one being published without hard links, to be filled; kekSettlePoll is
// how often it looks again meanwhile.
const (
	kekSettle     = 2 * time.Second
	kekSettlePoll = 5 * time.Millisecond
)

// LoadOrCreateSealer reads the KEK file at path, creating it (mode 0400,
// missing parent directories 0700) from crypto/rand if it does not exist.
//
// Creation is atomic and safe between processes: the KEK is written to a
// temporary file in the same directory, synced, then hard-linked to path;
// if another process linked first, its KEK is read and used. On a file
// system without hard links (FAT, exFAT), path is created empty with
// O_EXCL instead and the temporary file renamed over it; a process that
// finds the KEK file empty waits up to two seconds for it to be filled.
// An existing file is never rewritten. LoadOrCreateSealer refuses a KEK
// file that is not a regular file, is readable or writable by group or
// others (like ssh does with private keys; group read is allowed when root
// owns the file and shares it with another group, see checkKEKMode), or
// is not exactly 32 bytes,
// and refuses to create one on a file system that does not keep
// permissions (exFAT mounted without umask=077); the error names the path.
//
// Every error about the file is a *FileError naming path.
func LoadOrCreateSealer(path string) (*Sealer, error) {
	kek, err := readKEKSettled(path, false)
	if errors.Is(err, fs.ErrNotExist) {
		kek, err = createKEK(path)
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer clear(kek)
	return NewSealer(kek)
}

// CheckKEKFile reads the existing KEK file at path and applies to it the
// rules LoadOrCreateSealer applies (a regular file, not accessible by
// group or others except as checkKEKMode allows, exactly 32 bytes),
// without creating it or keeping the key. A missing file gives a
// *FileError matching fs.ErrNotExist, a file this process may not read
// one matching fs.ErrPermission: callers checking a config for another
// user may pass over both.
func CheckKEKFile(path string) error {
	kek, err := readKEKSettled(path, false)
	clear(kek)
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// FileError is a problem with the KEK file at Path: missing, unreadable,
// too open, of the wrong size, or not creatable. Its message is Err's,
// which already names the path; it lets callers tell a KEK file problem
// from others, to report it where that path was configured.
type FileError struct {
	// Path is the KEK file's path, as given.
	Path string
	// Err says what is wrong; errors.Is(err, fs.ErrNotExist) and
	// fs.ErrPermission see through it.
	Err error
}

// Error returns Err's message.
func (e *FileError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *FileError) Unwrap() error { return e.Err }

// readKEKSettled is readKEK, but waits up to kekSettle for an empty KEK
// file to be filled: another process may be publishing it (see
// publishKEK). If published is set, the file was just published, by this
// process or another, so it also waits while the file seems missing: on
// FUSE (exFAT) an open racing with the rename over the empty file can fail
// with ENOENT.
func readKEKSettled(path string, published bool) ([]byte, error) {
	deadline := time.Now().Add(kekSettle)
	for {
		kek, err := readKEK(path)
		var se *sizeError
		settling := errors.As(err, &se) && se.size == 0 || published && errors.Is(err, fs.ErrNotExist)
		if !settling || time.Now().After(deadline) {
			return kek, err
		}
		time.Sleep(kekSettlePoll)
	}
}

// sizeError is readKEK's error for a KEK file of the wrong size.
type sizeError struct {
	path string
	size int
}

func (e *sizeError) Error() string {
	return fmt.Sprintf("keys: KEK file %s has %d bytes, want %d (refusing to use or replace it)", e.path, e.size, KEKSize)
}

// readKEK reads and checks an existing KEK file. A missing file gives an
// error matching fs.ErrNotExist.
func readKEK(path string) ([]byte, error) {
	f, err := os.OpenFile(path, kekOpenFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("keys: KEK file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: KEK file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: KEK file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if err := checkKEKMode(path, fi); err != nil {
		return nil, err
	}
	kek := make([]byte, KEKSize+1) // one extra byte detects a file that grew
	n, err := io.ReadFull(f, kek)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("keys: read KEK file: %w", err)
	}
	if n != KEKSize {
		clear(kek)
		return nil, &sizeError{path: path, size: max(n, int(fi.Size()))}
	}
	return kek[:KEKSize], nil
}

// checkKEKMode refuses a KEK file that others may access or the group
// may write. The group may read it only when the administrator shares it:
// the file belongs to root and to a group other than root's, as `tlspilot
// init --user` leaves it (root:GROUP 0440) so that `certs`, running in
// GROUP, reads the KEK but cannot replace it. Group read is refused
// otherwise, as ssh refuses a group-readable private key.
func checkKEKMode(path string, fi fs.FileInfo) error {
	perm := fi.Mode().Perm()
	if perm&0o037 == 0 && (perm&0o040 == 0 || sharedByRoot(fi)) {
		return nil
	}
	return fmt.Errorf("keys: KEK file %s: permissions %#o are too open: it must not be accessible by group or others "+
		"(chmod 0400 %s), except readable by the group when root owns it (chown root:GROUP, chmod 0440)", path, perm, path)
}

// createKEK writes a new random KEK to path, or reads the one another
// process created first.
func createKEK(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create KEK directory: %w", err)
	}
	tmp, err := writeTempKEK(path)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	err = publishKEK(tmp, path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("keys: create KEK file: %w", err)
	}
	if err == nil {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	// Whether this process won or lost the race, the file at path is the
	// KEK everyone uses.
	return readKEKSettled(path, true)
}

// publishKEK gives path the content of the complete KEK file tmp, unless
// path exists: then it fails with an error matching fs.ErrExist. tmp may
// remain; the caller removes it.
//
// It hard-links tmp to path. Where hard links are not supported, it
// creates path empty with O_EXCL, which fails if path exists, and renames
// tmp over it: other processes may see the empty file for that moment,
// never a partial KEK, and readKEKSettled waits for it to be filled.
func publishKEK(tmp, path string) error {
	lerr := os.Link(tmp, path)
	if lerr == nil || errors.Is(lerr, fs.ErrExist) {
		return lerr
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w; without hard links: %w", lerr, err)
	}
	_ = f.Close()
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(path) // our own empty file
		return fmt.Errorf("%w; without hard links: %w", lerr, err)
	}
	return nil
}

// writeTempKEK writes 32 random bytes to a new 0400 file next to path,
// syncs it and returns its name.
func writeTempKEK(path string) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".kek-*.tmp")
	if err != nil {
		return "", fmt.Errorf("keys: create KEK temp file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("keys: close KEK temp file: %w", cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o400); err != nil {
		return "", fmt.Errorf("keys: chmod KEK temp file: %w", err)
	}
	if err := keepsPermissions(f, path); err != nil {
		return "", err
	}
	kek := make([]byte, KEKSize)
	defer clear(kek)
	rand.Read(kek) // never fails (crypto/rand.Read crashes the program instead)
	if _, err := f.Write(kek); err != nil {
		return "", fmt.Errorf("keys: write KEK temp file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("keys: sync KEK temp file: %w", err)
	}
	return f.Name(), nil
}

// keepsPermissions checks that f, just set to mode 0400, is not accessible
// by group or others. FAT and exFAT have no permissions: their files have
// the mode the mount options give them, often 0777, and a KEK there would
// be readable by everyone.
func keepsPermissions(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("keys: KEK temp file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("keys: cannot create KEK file %s: the file system does not keep file permissions "+
			"(a file set to mode 0400 has mode %#o), so the key would be readable by group or others: "+
			"put the KEK file on a file system with Unix permissions, or mount this one private to its owner (FAT, exFAT: -o umask=077)",
			path, perm)
	}
	return nil
}

// syncDir fsyncs a directory so a new entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: sync KEK directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync KEK directory: %w", err)
	}
	return nil
}
