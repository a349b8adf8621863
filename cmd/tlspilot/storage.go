package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/config"
)

// storageDir returns the storage directory the config uses: its own, or
// the library's default.
func storageDir(cfg *config.Config) (string, error) {
	if cfg.Storage != "" {
		return cfg.Storage, nil
	}
	d, err := tlspilot.DefaultStorageDir()
	if err != nil {
		return "", cfg.Errorf("storage", "%w", err)
	}
	return d, nil
}

// storageError reports a storage problem at the "storage" key, saying,
// when serve changes user, that the storage must be that user's.
func storageError(cfg *config.Config, dir string, err error) error {
	hint := ""
	var pe *fs.PathError
	switch {
	case cfg.User != "":
		hint = fmt.Sprintf(" (serve runs as user %q after binding its ports, so the storage must be writable by %[1]s: chown -R %[1]s %s)", cfg.User, dir)
	case errors.As(err, &pe) && errors.Is(err, fs.ErrPermission):
		hint = permissionHint(pe.Path)
	case errors.Is(err, fs.ErrPermission):
		if path, _, ok := storageOwner(dir); ok {
			hint = permissionHint(path)
		}
	}
	return cfg.Errorf("storage", "%s: %w%s", dir, err, hint)
}

// permissionHint says, for a file this process was refused, which uid it
// runs as and who owns the file, with the fix.
func permissionHint(path string) string {
	uid := os.Geteuid()
	fi, err := os.Stat(path)
	st, ok := statOf(fi, err)
	switch {
	case !ok:
		return fmt.Sprintf(" (this runs as uid %d)", uid)
	case int(st.Uid) != uid:
		return fmt.Sprintf(" (this runs as uid %d; %s belongs to uid %d: run this as that user, or give it to uid %d, as tlspilot init --user does for the storage)", uid, path, st.Uid, uid)
	default:
		return fmt.Sprintf(" (this runs as uid %d, which owns %s: check its mode, %v, and the directories above it)", uid, path, fi.Mode().Perm())
	}
}

// statOf returns a stat's system part when there is one.
func statOf(fi fs.FileInfo, err error) (*syscall.Stat_t, bool) {
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// probeStorage creates the storage directory if need be and a file in
// it, as the user serve runs as, so that a storage it cannot write is
// refused at start with the config line, not at the first renewal. A
// database storage is opened later, by managerConfig; here only its
// key-encryption key is read.
func probeStorage(cfg *config.Config) error {
	if cfg.StorageIsDatabase() {
		return probeKEK(cfg)
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return storageError(cfg, dir, errors.Unwrap(err))
	}
	probe := dir
	if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil && fi.IsDir() {
		// Records go to data/; the storage folder itself may be root's
		// (tlspilot init --user).
		probe = filepath.Join(dir, "data")
	}
	f, err := os.CreateTemp(probe, ".~probe-") // "~": never a storage key
	if err != nil {
		return storageError(cfg, probe, fmt.Errorf("not writable: %w", errors.Unwrap(err)))
	}
	_ = f.Close()
	return os.Remove(f.Name())
}

// checkStorage says whether the user serve will run as may write the
// storage directory (or, before it exists, create it) and read its
// key-encryption key, from permission bits alone: check changes nothing.
// Of a database storage, it checks the key-encryption key only (check does
// not connect to the database).
func checkStorage(cfg *config.Config, dir string) error {
	if cfg.StorageIsDatabase() {
		return checkKEK(cfg)
	}
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	if err := accessible(dir, uid, gid, 3); err != nil {
		return storageError(cfg, dir, err)
	}
	kek := kekFile(cfg, dir)
	if _, err := os.Stat(kek); err == nil {
		if err := accessible(kek, uid, gid, 4); err != nil {
			return storageError(cfg, dir, err)
		}
	}
	return nil
}

// checkServeStorage checks the storage as serve will use it, for check:
// writable by the user serve runs as when a site obtains certificates
// from the CA, else not used for ACME (serve may keep OCSP answers there). It returns
// the line check prints about it.
func checkServeStorage(cfg *config.Config) (string, error) {
	dir, err := storageDir(cfg)
	if len(acmeCerts(cfg)) == 0 {
		if err != nil {
			return "storage path: none (serve does not open one: no site obtains a certificate from the CA)", nil
		}
		return "storage path: " + dir + " (serve does not open it for ACME: no site obtains a certificate from the CA; only OCSP answers may be kept there)", nil
	}
	if err == nil {
		err = checkStorage(cfg, dir)
	}
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) && !config.IsDatabaseURL(dir) {
		return "storage path: " + dir + " (does not exist yet: serve creates it, mode 0700)", err
	}
	return "storage path: " + dir, err
}

// runAs returns the uid and gid serve runs as once it has bound its ports.
func runAs(cfg *config.Config) (uid, gid int, err error) {
	uid, gid = os.Geteuid(), os.Getegid()
	if cfg.User != "" {
		u, err := lookupUser(cfg.User)
		if err != nil {
			return 0, 0, cfg.Errorf("user", "%w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if cfg.Group != "" {
		g, err := lookupGroup(cfg.Group)
		if err != nil {
			return 0, 0, cfg.Errorf("group", "%w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

// accessible checks that uid and gid have the permission bits want (4
// read, 2 write, 1 search; a directory needs search too) on path, or on
// its nearest existing parent directory if path does not exist yet, and
// may search every directory above it, and above where its symlinks
// lead: the kernel follows them and searches those directories too.
func accessible(path string, uid, gid int, want fs.FileMode) error {
	p := path
	fi, err := os.Stat(p)
	for errors.Is(err, fs.ErrNotExist) && filepath.Dir(p) != p {
		p = filepath.Dir(p)
		fi, err = os.Stat(p)
	}
	if err != nil {
		return err
	}
	if err := searchable(filepath.Dir(p), uid, gid); err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
		if err := searchable(filepath.Dir(real), uid, gid); err != nil {
			return err
		}
	}
	if fi.IsDir() {
		want |= 1
	}
	return permits(p, uid, gid, want)
}

// searchable checks that uid and gid may search dir and every directory
// above it.
func searchable(dir string, uid, gid int) error {
	for a := dir; ; a = filepath.Dir(a) {
		if err := permits(a, uid, gid, 1); err != nil {
			return err
		}
		if filepath.Dir(a) == a {
			return nil
		}
	}
}

// permits checks the permission bits want of uid and gid on path, by its
// POSIX access ACL when it has one (its group bits are then the mask).
// As Linux does (fs/namei.c, acl_permission_check), the ACL counts only
// when its mask grants something: with none, the bits decide, so a user
// an ACL names gets the others' permissions.
func permits(path string, uid, gid int, want fs.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || uid == 0 {
		return nil
	}
	if acl, ok := accessACL(path); ok && fi.Mode().Perm()&0o070 != 0 {
		if !aclPermits(acl, st.Uid, st.Gid, uid, gid, want) {
			return fmt.Errorf("permission denied: %s is mode %v with an ACL, owned by uid %d gid %d, and uid %d gid %d needs %s access",
				path, fi.Mode().Perm(), st.Uid, st.Gid, uid, gid, accessName(want))
		}
		return nil
	}
	bits := fi.Mode().Perm()
	switch {
	case int(st.Uid) == uid:
		bits >>= 6
	case int(st.Gid) == gid:
		bits >>= 3
	}
	if bits&want != want {
		return fmt.Errorf("permission denied: %s is mode %v, owned by uid %d gid %d, and uid %d gid %d needs %s access",
			path, fi.Mode().Perm(), st.Uid, st.Gid, uid, gid, accessName(want))
	}
	return nil
}

func accessName(m fs.FileMode) string {
	s := ""
	for _, b := range []struct {
		bit fs.FileMode
		c   string
	}{{4, "r"}, {2, "w"}, {1, "x"}} {
		if m&b.bit != 0 {
			s += b.c
		}
	}
	return s
}

// preflight refuses at start, at the config line, what would otherwise
// fail only at the first order: Let's Encrypt's terms not agreed to, a
// storage the user serve runs as cannot write. It runs after privileges
// are dropped.
func preflight(cfg *config.Config) error {
	if err := cfg.CheckTerms(); err != nil {
		return err
	}
	return probeStorage(cfg)
}

// checkChallengeDir refuses at start, at the challenge_dir line, a
// challenge directory the user serve runs as cannot search: it could
// serve none of the answers written there. It runs after privileges are
// dropped.
func checkChallengeDir(cfg *config.Config) error {
	if cfg.ChallengeDir == "" {
		return nil
	}
	// dir/. needs search permission on dir itself.
	if _, err := os.Stat(cfg.ChallengeDir + string(filepath.Separator) + "."); err != nil {
		hint := ""
		if cfg.User != "" {
			hint = fmt.Sprintf(" (serve runs as user %q after binding its ports and needs search permission on the directory and read permission on its files)", cfg.User)
		}
		return cfg.Errorf("challenge_dir", "%w%s", errors.Unwrap(err), hint)
	}
	return nil
}

// newError places an error of tlspilot.New in the config: a permission
// problem is the storage's (its key-encryption key, its records).
func newError(cfg *config.Config, err error) error {
	if errors.Is(err, fs.ErrPermission) && cfg.StorageIsDatabase() {
		return cfg.Errorf("kek_file", "%w", err) // the only local file a database storage reads
	}
	if errors.Is(err, fs.ErrPermission) {
		var pe *fs.PathError
		if cfg.KEKFile != "" && errors.As(err, &pe) && pe.Path == cfg.KEKFile {
			return cfg.Errorf("kek_file", "%w%s", err, permissionHint(pe.Path))
		}
		if dir, derr := storageDir(cfg); derr == nil {
			return storageError(cfg, dir, err)
		}
	}
	if key, ok := kekKey(cfg, err); ok {
		return cfg.Errorf(key, "%w", err)
	}
	if errors.Is(err, certstore.ErrWrongKEK) {
		key := "kek_file"
		if cfg.KEKFile == "" {
			key = "storage" // the storage directory's kek
		}
		return cfg.Errorf(key, "%w", err)
	}
	return fmt.Errorf("%s: %w", cfg.File, err)
}
