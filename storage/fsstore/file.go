package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// tempPattern names temporary files. The '~' keeps them out of List, which
// only reports names that are valid key segments.
const tempPattern = ".~tmp-*"

// Load returns the value stored under key. A missing key yields an error
// satisfying errors.Is(err, fs.ErrNotExist); so does a key that is only a
// folder of other keys. A storage that vanished yields ErrGone, which
// does not. A value file replaced by a symbolic link, FIFO or device, or
// a folder replaced by a symbolic link (which List does not report
// either), is refused, never read through.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx.Err(), key); err != nil {
		return nil, fmt.Errorf("fsstore: load: %w", err)
	}
	if err := s.checkData(); err != nil {
		return nil, fmt.Errorf("fsstore: load %s: %w", key, err)
	}
	b, err := s.readValue(ctx, key)
	if err != nil && notExist(err) {
		err = s.goneOr(err) // vanished while reading?
	}
	if err != nil && notExist(err) && !errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("fsstore: load %s: %w", key, err)
	}
	return b, nil
}

// maxOpenRetries bounds how often readValue opens a file again that its
// folder lists but that could not be opened.
const maxOpenRetries = 100

// readValue reads the value file of key.
//
// On FUSE file systems that work by path, as exfat-fuse does, an open that
// races with a rename over the file can fail with ENOENT although a version
// of the file exists all the time: the kernel looked up the old version,
// which is gone when the open reaches the file system. Under a
// steady stream of Stores even an immediate retry can fail again. So on
// FUSE, an ENOENT is believed only if the file's folder does not list the
// name; while it does, the open is retried, up to maxOpenRetries times or
// until ctx ends.
func (s *Store) readValue(ctx context.Context, key string) ([]byte, error) {
	path, rel := s.dataPath(key), filepath.FromSlash(key)
	b, err := readFile(s.dataDir, rel)
	for n := 0; s.fuse && errors.Is(err, fs.ErrNotExist) && listed(path); n++ {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if n == maxOpenRetries {
			// %v, not %w: the file exists, so this must not read as a
			// missing key.
			return nil, fmt.Errorf("%s is listed in its folder but %d opens failed (is it replaced all the time?); last: %v",
				filepath.Base(path), n+1, err)
		}
		b, err = readFile(s.dataDir, rel)
	}
	return b, err
}

// readFile reads the value file rel names below dir, which must be a
// regular file in folders, as List reports only those: a symbolic link,
// FIFO or device put in its place, or a link in place of one of its
// folders, is refused, not followed or read (a FIFO blocked the read for
// ever, a link to /dev/zero never ended, a link out of the storage read
// another file into it).
func readFile(dir, rel string) ([]byte, error) {
	f, _, err := openRegular(dir, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// openRegular opens the regular file rel names below dir for reading, as
// readFile and the reading of a lock file (inspect) need, and returns it
// with its FileInfo: anything else at its name is refused.
func openRegular(dir, rel string) (*os.File, fs.FileInfo, error) {
	path := filepath.Join(dir, rel)
	f, err := openValue(dir, rel)
	if pe := (*fs.PathError)(nil); isLinkLoop(err) && errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("%s is not a regular file or folder but a symbolic link: refusing to read through it", pe.Path)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		// A key that is only a folder of other keys: missing, as
		// os.ReadFile's EISDIR said.
		err = &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%s is not a regular file (mode %s): refusing to read it", path, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// listed reports whether path's folder lists its name.
func listed(path string) bool {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return false
	}
	name := filepath.Base(path)
	_, found := slices.BinarySearchFunc(entries, name, func(e fs.DirEntry, name string) int {
		return strings.Compare(e.Name(), name)
	})
	return found
}

// Store saves value under key, atomically and durably: it writes a
// temporary file in the key's folder, syncs it, renames it over the old
// value and syncs the folder. Missing folders are created with mode 0700,
// the value file has mode 0600; both also let the storage's group read
// them where an administrator opened the data folder to it (see grant). A
// key cannot be both a value and a folder of other keys: storing "a/b"
// while "a" holds a value fails, and so does the reverse. It never
// creates the data folder: a storage that vanished fails with ErrGone.
func (s *Store) Store(ctx context.Context, key string, value []byte) error {
	if s.ro {
		return ErrReadOnly
	}
	if err := check(ctx.Err(), key); err != nil {
		return fmt.Errorf("fsstore: store: %w", err)
	}
	if err := s.checkData(); err != nil {
		return fmt.Errorf("fsstore: store %s: %w", key, err)
	}
	path := s.dataPath(key)
	for attempt := 1; ; attempt++ {
		err := s.makeParents(path)
		if err == nil {
			err = writeAtomic(path, value, valueGrant(path), true)
		}
		if err != nil && notExist(err) && attempt < maxStoreAttempts {
			continue // a folder was pruned as it was made or written in (PruneFolder): make it again
		}
		if err != nil {
			return fmt.Errorf("fsstore: store %s: %w", key, s.goneOr(err))
		}
		return nil
	}
}

// maxStoreAttempts bounds how often Store makes a folder again that a
// concurrent PruneFolder removed under it.
const maxStoreAttempts = 10

// PruneFolder removes the folder prefix if it is empty (storage.FolderPruner).
// A folder holding a key, a temporary file of a Store under way or
// anything else is left, and so is a key: rmdir(2) removes only an empty
// directory, so a Store racing with it either finds the folder or makes
// it again (Store retries). The removal is not synced: a crash may bring
// back an empty folder, which is harmless.
func (s *Store) PruneFolder(ctx context.Context, prefix string) error {
	if s.ro {
		return ErrReadOnly
	}
	if err := check(ctx.Err(), prefix); err != nil {
		return fmt.Errorf("fsstore: prune: %w", err)
	}
	err := syscall.Rmdir(s.dataPath(prefix))
	switch {
	case err == nil, notExist(err), isNotDir(err),
		errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		return nil
	}
	return fmt.Errorf("fsstore: prune %s: %w", prefix, err)
}

// PruneEmptyFolders removes the empty folders below prefix, deepest
// first, and returns how many it removed (storage.FolderPruner). A folder
// that holds anything, or gets something meanwhile, stays.
func (s *Store) PruneEmptyFolders(ctx context.Context, prefix string) (int, error) {
	if s.ro {
		return 0, ErrReadOnly
	}
	if err := check(ctx.Err(), prefix); err != nil {
		return 0, fmt.Errorf("fsstore: prune: %w", err)
	}
	root := s.dataPath(prefix)
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && notExist(err):
			return nil
		case err != nil && path != root:
			// A folder this user may not read (another user's): leave
			// it and go on with the others.
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case d.IsDir() && path != root:
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fsstore: prune %s: %w", prefix, err)
	}
	n := 0
	for i := len(dirs) - 1; i >= 0; i-- { // WalkDir lists a folder before what it holds
		if syscall.Rmdir(dirs[i]) == nil {
			n++
		}
	}
	return n, nil
}

// Delete removes key. Deleting a missing key, or a key that is only a
// folder of other keys, does nothing and returns nil; on a storage that
// vanished it fails with ErrGone. Emptied folders are left in place
// (PruneFolder removes one).
func (s *Store) Delete(ctx context.Context, key string) error {
	if s.ro {
		return ErrReadOnly
	}
	if err := check(ctx.Err(), key); err != nil {
		return fmt.Errorf("fsstore: delete: %w", err)
	}
	if err := s.checkData(); err != nil {
		return fmt.Errorf("fsstore: delete %s: %w", key, err)
	}
	path := s.dataPath(key)
	fi, err := os.Lstat(path)
	if err == nil && fi.IsDir() {
		return nil
	}
	if notExist(err) {
		if err := s.checkData(); err != nil { // vanished meanwhile?
			return fmt.Errorf("fsstore: delete %s: %w", key, err)
		}
		return nil
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil && !notExist(err) {
		return fmt.Errorf("fsstore: delete %s: %w", key, err)
	}
	return nil
}

// List returns every key below the folder prefix (at any depth), sorted;
// an empty prefix lists every key. Files whose names are not valid keys,
// such as temporary files, are skipped. A storage that vanished fails with
// ErrGone instead of listing nothing.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fsstore: list: %w", err)
	}
	if err := s.checkData(); err != nil {
		return nil, fmt.Errorf("fsstore: list %s: %w", prefix, err)
	}
	root := s.dataDir
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			return nil, fmt.Errorf("fsstore: list: %w", err)
		}
		root = s.dataPath(prefix)
	}
	var keys []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if notExist(err) {
				return nil // root missing, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == root {
			if !d.IsDir() {
				return filepath.SkipAll // prefix is a key, not a folder
			}
			return nil
		}
		if checkKey(d.Name()) != nil { // one segment: no '/' in a file name
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.dataDir, path)
		if err == nil && checkKey(filepath.ToSlash(rel)) == nil {
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err == nil {
		err = s.checkData() // an empty answer must not be a vanished storage
	}
	if err != nil {
		return nil, fmt.Errorf("fsstore: list %s: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// makeParents creates the missing folders between the data folder and
// path's parent, each with the grant of the folder it is made in. It
// never creates the data folder itself.
func (s *Store) makeParents(path string) error {
	parent := filepath.Dir(path)
	if fi, err := os.Stat(parent); err == nil && fi.IsDir() || parent == s.dataDir {
		return nil
	}
	rel, err := filepath.Rel(s.dataDir, parent)
	if err != nil {
		return err
	}
	dir := s.dataDir
	for seg := range strings.SplitSeq(filepath.ToSlash(rel), "/") {
		g := folderGrant(dir)
		dir = filepath.Join(dir, seg)
		if err := mkdirSynced(dir, g); err != nil {
			return err
		}
	}
	return nil
}

// mkdirSynced creates dir unless it exists, with mode 0700 plus what g
// grants the group (and set-group-ID if its parent has it, as the parent
// asks), and syncs its parent so the new entry survives a crash.
func mkdirSynced(dir string, g grant) error {
	err := os.Mkdir(dir, privateDir)
	if errors.Is(err, fs.ErrExist) {
		// Possibly created a moment ago by another process that has not
		// synced the parent yet: sync it ourselves before relying on it.
		return syncDir(filepath.Dir(dir))
	}
	if err != nil {
		return err
	}
	if err := settleDir(dir, g); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// settleDir sets the mode of the new folder dir (whatever the umask did).
func settleDir(dir string, g grant) error {
	perm := privateDir
	if fi, err := os.Stat(filepath.Dir(dir)); err == nil && fi.Mode()&fs.ModeSetgid != 0 {
		perm |= fs.ModeSetgid
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = g.settle(d, perm, groupRX)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeAtomic replaces path with a file holding data, with mode 0600 plus
// what g grants, via a synced temporary file in the same folder and a
// rename. If syncParent is set, it also syncs the folder so the rename
// itself is durable.
func writeAtomic(path string, data []byte, g grant, syncParent bool) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data, g)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if syncParent {
		return syncDir(dir)
	}
	return nil
}

// writeTemp writes data to a new, synced temporary file in dir, with mode
// 0600 plus what g grants, and returns its path.
func writeTemp(dir string, data []byte, g grant) (string, error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return "", err
	}
	err = fillTemp(f, data, g)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// fillTemp sets f's mode to 0600 plus what g grants, writes data and
// syncs it.
func fillTemp(f *os.File, data []byte, g grant) error {
	if err := g.settle(f, privateFile, groupR); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// syncDir syncs a folder, making renames and new entries in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// isNotDir reports whether err says a path segment is not a folder.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// isDir reports whether err says a path is a folder where a file was meant.
func isDir(err error) bool { return errors.Is(err, syscall.EISDIR) }
