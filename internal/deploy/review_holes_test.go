//go:build linux

package deploy

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReviewLeaseDoesNotBlockDeploy: the owner of the deploy folder may
// take a write lease (fcntl F_SETLEASE) on a file of its own at a deploy
// path. Opening it then fails with EWOULDBLOCK (O_NONBLOCK; it would
// block 45 s otherwise), as a FIFO there used to block: the entry must
// be replaced, not fail every deploy.
func TestReviewLeaseDoesNotBlockDeploy(t *testing.T) {
	chain, key := testPEM(t, "a.example")
	dir := t.TempDir()
	o := Options{Fullchain: filepath.Join(dir, "fullchain.pem")}
	if err := os.WriteFile(o.Fullchain, []byte("old"), PublicMode); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(o.Fullchain)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := unix.FcntlInt(held.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		t.Fatalf("F_SETLEASE: %v", err)
	}
	f := newFiles(t, o)
	var changed bool
	within(t, o.Fullchain, func() { changed, err = f.Write(t.Context(), chain, key) })
	if err != nil || !changed {
		t.Fatalf("Write = %v, %v; want the leased file replaced", changed, err)
	}
	if b, err := os.ReadFile(o.Fullchain); err != nil || !strings.HasPrefix(string(b), "-----BEGIN CERTIFICATE") {
		t.Errorf("fullchain afterwards: %.20q, %v", b, err)
	}
}

// TestReviewHardLinkedRootFolderLinkRefused: where fs.protected_hardlinks
// is 0 (the kernel's default, without systemd's sysctl), the owner of a
// folder on the way can hard-link a symbolic link of root's (Debian's
// /var/run -> /run) into it under the name of the next folder: the link
// is then root's but not root's doing. A folder link with more than one
// name is not followed. Root makes the hard link here, as the setting
// is global.
func TestReviewHardLinkedRootFolderLinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: a folder of another user")
	}
	chain, key := testPEM(t, "a.example")
	svc, elsewhere, admin := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.Chown(svc, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	rootLink := filepath.Join(admin, "run")
	if err := os.Symlink(elsewhere, rootLink); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(svc, "main")
	if err := unix.Linkat(unix.AT_FDCWD, rootLink, unix.AT_FDCWD, main, 0); err != nil {
		t.Fatal(err)
	}
	f := newFiles(t, Options{Privkey: filepath.Join(main, "server.key"), Owner: "65534"})
	_, err := f.Write(t.Context(), chain, key)
	t.Logf("Write: %v", err)
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 || err == nil {
		t.Errorf("Write = %v; %d files where the hard-linked link points, want it refused", err, len(entries))
	}
}

// TestReviewFolderOwnersDefaultACLDropped: the owner of a deploy folder
// may give it a default ACL naming itself (setfacl -d -m u:65534:r);
// a key written there as root:root 0640 would inherit it, and the mask
// r-- would let that user read the key. The inherited ACL is removed in
// another user's folder, and kept in root's (where the administrator set
// it to give a service access).
func TestReviewFolderOwnersDefaultACLDropped(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: a folder of another user")
	}
	chain, key := testPEM(t, "a.example")
	for _, tt := range []struct {
		name    string
		uid     int // owner of the folder
		aclKept bool
	}{
		{"service user's folder", 65534, false},
		{"root's folder", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chown(dir, tt.uid, tt.uid); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(dir, "system.posix_acl_default", defaultACLReading(65534), 0); err != nil {
				t.Fatalf("set a default ACL: %v", err)
			}
			o := Options{Privkey: filepath.Join(dir, "privkey.pem"), Owner: "0", Group: "0", Mode: 0o640}
			mustWrite(t, newFiles(t, o), chain, key)
			_, err := unix.Getxattr(o.Privkey, "system.posix_acl_access", make([]byte, 256))
			if kept := err == nil; kept != tt.aclKept {
				t.Errorf("access ACL on the key: %v (%v), want %v", kept, err, tt.aclKept)
			}
		})
	}
}

// defaultACLReading is a POSIX default ACL (xattr form) that grants uid
// read access.
func defaultACLReading(uid uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2) // version
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 7, ^uint32(0)}, {2, 4, uid}, {4, 5, ^uint32(0)}, {0x10, 7, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}
