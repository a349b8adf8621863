package fsstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Modes of what the Store creates. Everything is private to the user the
// storage runs as, except what an administrator opened to the storage's
// group inside the data folder (see grant).
const (
	privateFile fs.FileMode = 0o600
	privateDir  fs.FileMode = 0o700
	groupR      fs.FileMode = 0o040 // group read, the most a value is given
	groupRX     fs.FileMode = 0o050 // group read and search, the most a folder is given
)

// grant is the group access a new value or folder in the data folder may
// be given: read (and search, for a folder) for the group gid.
//
// Status readers are let in as docs/status.md says: an administrator adds
// them to the storage's group and runs `chmod -R g+rX` on it. A value
// written later keeps what the group could read: a value replaced by Store
// is group-readable if the file it replaces was, or if its folder grants
// the group read and search; a new value or folder likewise if its folder
// does. Nothing is ever given to others, nor write access to anyone but
// the owner. Private key files (privateKey), lock files, temporary files
// and the data and locks folders New creates are always private: opening
// the data folder to the group is the administrator's choice, never
// inherited from the storage directory.
type grant struct {
	ok  bool
	gid int
}

// privateKey reports whether a value's file name is that of a private
// key, as tlspilot names them ("key", "<n>.key"). Such values never
// become group-readable: status readers do not need them, and although
// their content is sealed under the key-encryption key, a copy for a
// reader that might one day get hold of that key too is one too many.
// (Records that embed a sealed key, such as cert.json, do follow grant.)
func privateKey(name string) bool {
	return name == "key" || strings.HasSuffix(name, ".key")
}

// valueGrant is the grant of a value about to be written to path.
func valueGrant(path string) grant {
	if privateKey(filepath.Base(path)) {
		return grant{}
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&groupR != 0 {
		if gid, ok := fileGID(fi); ok {
			return grant{ok: true, gid: gid}
		}
	}
	return folderGrant(filepath.Dir(path))
}

// folderGrant is the grant of a new entry in dir: its group's, if dir
// lets the group read and search it.
func folderGrant(dir string) grant {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&groupRX != groupRX {
		return grant{}
	}
	gid, ok := fileGID(fi)
	return grant{ok: ok, gid: gid}
}

// settle sets the mode of f, a file or folder this process just created,
// to perm, plus groupBits if g grants them and f belongs to g's group.
// A new file belongs to the process's group unless its folder passes its
// own group on (set-group-ID): settle hands it to g's group if the process
// may (it is a member, or root), and otherwise leaves f private, so the
// grant never reaches a group the administrator did not choose.
func (g grant) settle(f *os.File, perm, groupBits fs.FileMode) error {
	if g.ok && g.adopt(f) {
		perm |= groupBits
	}
	return f.Chmod(perm)
}

// adopt reports whether f belongs to g's group, handing it over if it
// does not and the process may.
func (g grant) adopt(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	gid, ok := fileGID(fi)
	if !ok {
		return false
	}
	return gid == g.gid || f.Chown(-1, g.gid) == nil
}
