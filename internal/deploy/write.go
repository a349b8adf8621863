package deploy

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// staged is a file written under a temporary name next to its target.
type staged struct {
	tmp, path string
	mode      fs.FileMode
}

// discard removes the temporary file, if it is still there.
func (s *staged) discard() { _ = os.Remove(s.tmp) }

// stage writes w under a temporary name in its directory, with its owner,
// group and mode, and syncs it. It returns nil when the file already
// holds w's content (after correcting its mode and owner if needed).
func (f *Files) stage(w file) (*staged, error) {
	old, err := os.ReadFile(w.path)
	switch {
	case err == nil && bytes.Equal(old, w.data):
		return nil, f.settle(w)
	case errors.Is(err, fs.ErrPermission):
		// Rewriting what cannot be compared would rewrite it, and
		// reload, every time.
		return nil, permError(w.path, "read permission on the file, to compare it with the certificate", err)
	}
	dir := filepath.Dir(w.path)
	t, err := os.CreateTemp(dir, "."+filepath.Base(w.path)+".tmp-*")
	if err != nil {
		return nil, permError(w.path, fmt.Sprintf("write and search permission on the directory %s", dir), err)
	}
	s := &staged{tmp: t.Name(), path: w.path, mode: w.mode}
	err = f.prepare(t, w)
	if cerr := t.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("deploy %s: %w", w.path, cerr)
	}
	if err != nil {
		s.discard()
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
	old, err := os.ReadFile(w.path)
	if err != nil || !bytes.Equal(old, w.data) {
		return false
	}
	fi, err := os.Stat(w.path)
	if err != nil || fi.Mode().Perm() != w.mode {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || (f.uid < 0 || int(st.Uid) == f.uid) && (f.gid < 0 || int(st.Gid) == f.gid)
}

// settle gives an existing file whose content is right the wanted mode
// and owner, if it has others.
func (f *Files) settle(w file) error {
	fi, err := os.Stat(w.path)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", w.path, err)
	}
	if fi.Mode().Perm() != w.mode {
		if err := os.Chmod(w.path, w.mode); err != nil {
			return permError(w.path, "ownership of the file to change its mode", err)
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (f.uid < 0 || int(st.Uid) == f.uid) && (f.gid < 0 || int(st.Gid) == f.gid) {
		return nil
	}
	if err := os.Chown(w.path, f.uid, f.gid); err != nil {
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

// commit renames every staged file into place, then syncs their
// directories so that the renames survive a crash.
func commit(files []*staged) error {
	dirs := map[string]bool{}
	for _, s := range files {
		if err := os.Rename(s.tmp, s.path); err != nil {
			return permError(s.path, "write permission on the directory "+filepath.Dir(s.path), err)
		}
		dirs[filepath.Dir(s.path)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("deploy: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("deploy: sync %s: %w", dir, err)
	}
	return nil
}
