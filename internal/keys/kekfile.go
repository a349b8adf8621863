package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateSealer reads the KEK file at path, creating it (mode 0400,
// missing parent directories 0700) from crypto/rand if it does not exist.
//
// Creation is atomic and safe between processes: the KEK is written to a
// temporary file in the same directory, synced, then hard-linked to path;
// if another process linked first, its KEK is read and used. An existing
// file is never rewritten. LoadOrCreateSealer refuses a KEK file that is
// not a regular file, is readable or writable by group or others (like
// ssh does with private keys), or is not exactly 32 bytes; the error names
// the path.
func LoadOrCreateSealer(path string) (*Sealer, error) {
	kek, err := readKEK(path)
	if errors.Is(err, fs.ErrNotExist) {
		kek, err = createKEK(path)
	}
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	return NewSealer(kek)
}

// readKEK reads and checks an existing KEK file. A missing file gives an
// error matching fs.ErrNotExist.
func readKEK(path string) ([]byte, error) {
	f, err := os.Open(path)
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
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: KEK file %s: permissions %#o are too open: it must not be accessible by group or others (chmod 0400 %s)", path, perm, path)
	}
	kek := make([]byte, KEKSize+1) // one extra byte detects a file that grew
	n, err := io.ReadFull(f, kek)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("keys: read KEK file: %w", err)
	}
	if n != KEKSize {
		clear(kek)
		return nil, fmt.Errorf("keys: KEK file %s has %d bytes, want %d (refusing to use or replace it)", path, max(n, int(fi.Size())), KEKSize)
	}
	return kek[:KEKSize], nil
}

// createKEK writes a new random KEK to path, or reads the one another
// process created first.
func createKEK(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: create KEK directory: %w", err)
	}
	tmp, err := writeTempKEK(dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
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
	return readKEK(path)
}

// writeTempKEK writes 32 random bytes to a new 0400 file in dir, syncs it
// and returns its name.
func writeTempKEK(dir string) (name string, err error) {
	f, err := os.CreateTemp(dir, ".kek-*.tmp")
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
