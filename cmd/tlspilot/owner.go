package main

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tlspilot/tlspilot/internal/config"
)

// asStorageOwner is called by the commands that write a file storage
// besides serve (renew, revoke, clean, certs, import). Run as root on a
// storage another user owns (serve's `user`, or the certs user that
// `tlspilot init --user` handed it to), they would leave files only root
// can read, and the owner's daemon would then fail to read its own
// storage. So as root such a command switches to the config's user and
// group when that user owns the storage (as serve does after binding its
// ports), and otherwise refuses, naming the owner to run it as. Run as
// anyone else, or on a database storage, it does nothing.
func asStorageOwner(cfg *config.Config, command string) error {
	if os.Geteuid() != 0 || config.IsDatabaseURL(cfg.Storage) {
		return nil
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return err
	}
	path, uid, ok := storageOwner(dir)
	if !ok || uid == 0 {
		return nil
	}
	if cfg.User != "" {
		runUID, _, err := runAs(cfg)
		if err != nil {
			return err
		}
		if runUID == uid {
			if err := dropPrivileges(cfg.User, cfg.Group); err != nil {
				return cfg.Errorf("user", "switch to %s to write its storage: %w", cfg.User, err)
			}
			return nil
		}
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return cfg.Errorf("storage", "%s belongs to user %s (uid %d, %s), and what tlspilot %s wrote as root "+
		"could not be read by it: run the command as that user (sudo -u %s tlspilot %s …)", dir, name, uid, path, command, name, command)
}

// storageOwner returns the owner of the part of the storage at dir that
// its user writes: data/certs, else locks, else data, else dir itself
// (after `tlspilot init --user` the folder and data/ stay root's, the
// rest is the certs user's). ok is false when none exists yet. A
// symbolic link another user than root made there counts as that user's:
// linking data/certs to a folder of root's must not keep a command run
// as root from switching to the storage's user (it would then write as
// root wherever the link points).
func storageOwner(dir string) (path string, uid int, ok bool) {
	for _, p := range []string{filepath.Join(dir, "data", "certs"), filepath.Join(dir, "locks"), filepath.Join(dir, "data"), dir} {
		fi, err := os.Lstat(p)
		if st, isUnix := statOf(fi, err); isUnix && fi.Mode()&fs.ModeSymlink != 0 && st.Uid != 0 {
			return p, int(st.Uid), true
		}
		if fi, err = os.Stat(p); err != nil {
			continue
		}
		if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix {
			return p, int(st.Uid), true
		}
		return "", 0, false
	}
	return "", 0, false
}
