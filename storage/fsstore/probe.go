package fsstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// Capabilities New probes for. Each name completes the sentence "the file
// system does not support …" in New's error.
const (
	capSyncFile  = "fsync of a file"
	capSyncDir   = "fsync of a directory"
	capRename    = "rename over an existing file"
	capExclusive = "exclusive create (O_CREATE|O_EXCL)"
	capHardLinks = "hard links"
)

// fuseMagic is the statfs type of FUSE file systems (FUSE_SUPER_MAGIC).
const fuseMagic = 0x65735546

// fsCaps is what New found the file system under a folder to support.
type fsCaps struct {
	// hardLinks: link(2) works. Without it, a lock file is published by
	// an exclusive create followed by a rename (see publish).
	hardLinks bool
	// fuse: the folder is on FUSE, where an open can fail with ENOENT
	// while another process renames a new version over the file (see
	// readValue).
	fuse bool
}

// prober checks a folder's file system for what the Store relies on.
type prober struct {
	log *slog.Logger
	// fault, if set, is asked before each probe and fails that probe
	// with the error it returns: unit tests play a file system without
	// a capability with it.
	fault func(capability string) error
}

// probe checks in dir that files and folders can be synced, that a file
// can be renamed over another and that exclusive create detects an
// existing file, and refuses with an error naming dir and the missing
// capability if not: the Store cannot keep its promises without them.
// Hard links are optional; their absence is logged once and reported in
// the result. A folder whose files do not keep mode 0600 gets a warning.
// probe leaves no file behind.
func (p prober) probe(dir string) (fsCaps, error) {
	a, err := p.create(dir, "old")
	if a != "" {
		defer os.Remove(a)
	}
	if err != nil {
		return fsCaps{}, err
	}
	p.checkMode(dir, a)
	if err := p.step(capSyncDir, func() error { return syncDir(dir) }); err != nil {
		return fsCaps{}, refuse(dir, capSyncDir, err)
	}
	if err := p.step(capExclusive, func() error { return exclusiveFails(a) }); err != nil {
		return fsCaps{}, refuse(dir, capExclusive, err)
	}
	if err := p.renameOver(dir, a); err != nil {
		return fsCaps{}, err
	}
	return fsCaps{hardLinks: p.linkWorks(dir, a), fuse: onFUSE(dir)}, nil
}

// refuse is New's error for a file system without capability.
func refuse(dir, capability string, err error) error {
	return fmt.Errorf("%s: the file system does not support %s, which the storage needs: %w", dir, capability, err)
}

// step runs one probe, unless the fault hook fails it first.
func (p prober) step(capability string, f func() error) error {
	if p.fault != nil {
		if err := p.fault(capability); err != nil {
			return err
		}
	}
	return f()
}

// create writes a synced probe file holding content in dir and returns its
// name (also on error, if the file exists).
func (p prober) create(dir, content string) (string, error) {
	f, err := os.CreateTemp(dir, ".~probe-*")
	if err != nil {
		return "", fmt.Errorf("%s: create a file: %w", dir, err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		return f.Name(), fmt.Errorf("%s: write a file: %w", dir, err)
	}
	if err := p.step(capSyncFile, f.Sync); err != nil {
		return f.Name(), refuse(dir, capSyncFile, err)
	}
	return f.Name(), nil
}

// exclusiveFails checks that creating the existing file path with O_EXCL
// fails as it should.
func exclusiveFails(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		_ = f.Close()
		return errors.New("creating an existing file succeeded")
	}
	return err
}

// renameOver renames a new probe file over the probe file old and checks
// that old then holds the new content and the new name is gone.
func (p prober) renameOver(dir, old string) error {
	b, err := p.create(dir, "new")
	if b != "" {
		defer os.Remove(b)
	}
	if err != nil {
		return err
	}
	err = p.step(capRename, func() error {
		if err := os.Rename(b, old); err != nil {
			return err
		}
		got, err := os.ReadFile(old)
		if err == nil && string(got) != "new" {
			err = fmt.Errorf("after the rename the file holds %q, want %q", got, "new")
		}
		if _, serr := os.Lstat(b); err == nil && !errors.Is(serr, fs.ErrNotExist) {
			err = fmt.Errorf("after the rename the old name is still there (%v)", serr)
		}
		return err
	})
	if err != nil {
		return refuse(dir, capRename, err)
	}
	return nil
}

// linkWorks reports whether a hard link to the probe file a can be made
// in dir, logging once if not.
func (p prober) linkWorks(dir, a string) bool {
	c := filepath.Join(dir, ".~probe-link-"+randomHex(4))
	err := p.step(capHardLinks, func() error { return os.Link(a, c) })
	_ = os.Remove(c)
	if err != nil {
		p.log.Info("fsstore: no hard links here; locks are created by exclusive create and rename",
			"dir", dir, "err", err)
	}
	return err == nil
}

// checkMode warns if the probe file path did not keep mode 0600, as on FAT
// and exFAT, which have no permissions: anyone who can reach the folder
// can then read what is stored.
func (p prober) checkMode(dir, path string) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm() != 0o600 {
		p.log.Warn("fsstore: the file system does not keep file permissions; stored files are not private to their owner",
			"dir", dir, "mode", fi.Mode().Perm().String())
	}
}

// stableInodes reports whether dir's file system keeps a folder's inode
// number for as long as the folder exists: every one but those known to
// number folders afresh once the kernel forgot them (FUSE ones such as
// exfat-fuse, the kernel's FAT and exFAT, CIFS/SMB with noserverino). An
// unknown file system counts as stable, so that a folder replaced by an
// empty one is still told apart there.
func stableInodes(dir string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return true
	}
	switch uint32(st.Type) {
	case fuseMagic, 0x4D44, 0x2011BAB0, 0xFF534D42, 0xFE534D42, 0x517B:
		return false
	}
	return true
}

// onFUSE reports whether dir is on a FUSE file system.
func onFUSE(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == fuseMagic
}
