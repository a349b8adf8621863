package deploy

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// splitChain splits a PEM chain into its first certificate and the rest,
// each re-encoded as PEM blocks with nothing between them.
func splitChain(chainPEM []byte) (leaf, chain []byte, err error) {
	rest := chainPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if leaf == nil {
			leaf = pem.EncodeToMemory(b)
			continue
		}
		chain = append(chain, pem.EncodeToMemory(b)...)
	}
	if leaf == nil {
		return nil, nil, errors.New("deploy: no certificate in the chain")
	}
	return leaf, chain, nil
}

// staged is a file written under a temporary name next to its target,
// in the folder dir holds open.
type staged struct {
	dir       *os.File
	tmp, path string
	mode      fs.FileMode
}

// discard removes the temporary file, if it is still there, and closes
// the folder.
func (s *staged) discard() {
	_ = unix.Unlinkat(int(s.dir.Fd()), s.tmp, 0)
	_ = s.dir.Close()
}

// stage writes w under a temporary name in its directory, with its owner,
// group and mode, and syncs it. It returns nil when the file already
// holds w's content (after correcting its mode and owner if needed).
func (f *Files) stage(w file) (*staged, error) {
	dir, err := openDir(filepath.Dir(w.path))
	if err != nil {
		return nil, permError(w.path, "write and search permission on the directory "+filepath.Dir(w.path), err)
	}
	s, err := f.stageIn(dir, w)
	if s == nil {
		_ = dir.Close()
	}
	return s, err
}

// stageIn is stage in the open folder dir.
func (f *Files) stageIn(dir *os.File, w file) (*staged, error) {
	cur, err := openExisting(dir, w.path)
	if err != nil {
		// Rewriting what cannot be compared would rewrite it, and
		// reload, every time.
		return nil, permError(w.path, "read permission on the file, to compare it with the certificate", err)
	}
	if cur != nil {
		same, err := cur.holdsData(w.data)
		same = same && !f.takesFromOther(cur.st)
		if err == nil && same {
			err = f.settle(cur, w)
		}
		cur.close()
		if err != nil || same {
			return nil, err
		}
	}
	t, name, err := createTemp(dir, filepath.Base(w.path))
	if err != nil {
		return nil, permError(w.path, fmt.Sprintf("write and search permission on the directory %s", dir.Name()), err)
	}
	s := &staged{dir: dir, tmp: name, path: w.path, mode: w.mode}
	if err = dropInheritedACL(dir, t); err != nil {
		err = fmt.Errorf("deploy %s: remove the ACL inherited from %s: %w", w.path, dir.Name(), err)
	} else {
		err = f.prepare(t, w)
	}
	if cerr := t.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("deploy %s: %w", w.path, cerr)
	}
	if err != nil {
		_ = unix.Unlinkat(int(dir.Fd()), name, 0)
		return nil, err
	}
	return s, nil
}

// prepare gives the open temporary file t its mode, owner and content
// and syncs it. The mode is set before anything is written, so the key
// is never readable by more than asked.
func (f *Files) prepare(t *os.File, w file) error {
	if err := t.Chmod(w.mode); err != nil {
		return fmt.Errorf("deploy %s: set mode %04o: %w", w.path, w.mode, err)
	}
	if f.uid >= 0 || f.gid >= 0 {
		if err := t.Chown(f.uid, f.gid); err != nil {
			return permError(w.path, f.chownNeed(), err)
		}
	}
	if _, err := t.Write(w.data); err != nil {
		return fmt.Errorf("deploy %s: %w", w.path, err)
	}
	if err := t.Sync(); err != nil {
		return fmt.Errorf("deploy %s: sync: %w", w.path, err)
	}
	return nil
}

// holds reports whether the file at w.path has w's content, mode and
// owner: whether stage would leave it as it is.
func (f *Files) holds(w file) bool {
	dir, err := openDir(filepath.Dir(w.path))
	if err != nil {
		return false
	}
	defer dir.Close()
	cur, err := openExisting(dir, w.path)
	if err != nil || cur == nil {
		return false
	}
	defer cur.close()
	same, err := cur.holdsData(w.data)
	return err == nil && same && cur.mode() == w.mode && f.owns(cur.st)
}

// owns reports whether st has the configured owner and group.
func (f *Files) owns(st *syscall.Stat_t) bool {
	return (f.uid < 0 || int(st.Uid) == f.uid) && (f.gid < 0 || int(st.Gid) == f.gid)
}

// takesFromOther reports whether giving the file of stat st the
// configured owner would take it from a user other than root, tlspilot's
// and the configured owner. Such a file is replaced, not chowned: its
// owner, who may write the deploy folder (it created the file with the
// certificate, which is public), may hold it open for writing, and would
// then write to a file of root's (or the configured owner's).
func (f *Files) takesFromOther(st *syscall.Stat_t) bool {
	return f.uid >= 0 && int(st.Uid) != f.uid && st.Uid != 0 && int(st.Uid) != os.Geteuid()
}

// settle gives an existing file whose content is right the wanted mode
// and owner, if it has others: through the descriptor openExisting
// opened, never by path, so that what was compared is what is changed.
func (f *Files) settle(cur *existing, w file) error {
	if cur.mode() != w.mode {
		if err := cur.f.Chmod(w.mode); err != nil {
			return permError(w.path, "ownership of the file to change its mode", err)
		}
	}
	if f.owns(cur.st) {
		return nil
	}
	if err := cur.f.Chown(f.uid, f.gid); err != nil {
		return permError(w.path, f.chownNeed(), err)
	}
	return nil
}

// chownNeed says what changing the owner or group needs.
func (f *Files) chownNeed() string {
	if f.uid >= 0 {
		return fmt.Sprintf("root (CAP_CHOWN) to give the file owner %s", f.opts.Owner)
	}
	return fmt.Sprintf("membership of group %s (or CAP_CHOWN) to give the file that group", f.opts.Group)
}

// permError wraps err for path, saying what permission is missing, and
// for which user, when it is a permission error.
func permError(path, need string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("deploy %s: permission denied: needs %s (tlspilot runs as uid %d gid %d): %w",
			path, need, os.Geteuid(), os.Getegid(), err)
	}
	return fmt.Errorf("deploy %s: %w", path, err)
}

// commit renames every staged file into place, within the folder it was
// written in, then syncs the folders so that the renames survive a
// crash. Every folder is closed (by the caller's discard on an error).
func commit(files []*staged) error {
	for _, s := range files {
		if err := unix.Renameat(int(s.dir.Fd()), s.tmp, int(s.dir.Fd()), filepath.Base(s.path)); err != nil {
			return permError(s.path, "write permission on the directory "+filepath.Dir(s.path),
				&fs.PathError{Op: "rename", Path: s.path, Err: err})
		}
	}
	for _, s := range files {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
	}
	return nil
}
