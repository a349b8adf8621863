package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tlspilot/tlspilot/storage"
)

// CheckWrite reports whether this process may replace or delete the
// value stored under key: it needs write permission on the value's file
// and write and search permission on its folder (a value not stored yet
// is judged by its nearest existing folder). Permissions are judged as
// the kernel would (access(2), for the process's user and groups); the
// error names the path, the permission missing and the user, and wraps
// fs.ErrPermission. It changes nothing. A Store opened read-only returns
// ErrReadOnly, and one whose storage vanished an error wrapping ErrGone.
func (s *Store) CheckWrite(ctx context.Context, key string) error {
	if err := check(ctx.Err(), key); err != nil {
		return fmt.Errorf("fsstore: check write: %w", err)
	}
	if s.ro {
		return ErrReadOnly
	}
	if err := s.checkData(); err != nil {
		return fmt.Errorf("fsstore: check write %s: %w", key, err)
	}
	path := s.dataPath(key)
	if _, err := os.Lstat(path); err == nil {
		if err := mayWrite(path, false); err != nil {
			return accessError(path, "write permission on the file", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsstore: check write %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	for ; dir != s.dataDir && dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		}
	}
	if err := mayWrite(dir, true); err != nil {
		return accessError(dir, "write and search permission on the folder", err)
	}
	return nil
}

// accessError says which permission on path this process lacks.
func accessError(path, need string, err error) error {
	return fmt.Errorf("fsstore: %s: %w: uid %d needs %s (%v)", path, fs.ErrPermission, os.Getuid(), need, err)
}

var (
	_ storage.WriteChecker = (*Store)(nil)
	_ storage.FolderPruner = (*Store)(nil)
)
