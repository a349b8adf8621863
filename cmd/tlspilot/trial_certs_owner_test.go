package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStorageOwnerLinkOfTheUser: the storage's user (after `tlspilot init
// --user`) replaces data/certs by a symbolic link to a folder of root's;
// a command run as root must still find the storage to be that user's,
// and switch to it, rather than write as root where the link points.
// A root-owned link to the storage itself is the administrator's, and
// the folder it points to is what counts.
func TestStorageOwnerLinkOfTheUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: links and folders of another user")
	}
	dir := t.TempDir()
	rootOwned := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "data", "certs")
	if err := os.Symlink(rootOwned, certs); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(certs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if p, uid, ok := storageOwner(dir); !ok || uid != 65534 || p != certs {
		t.Errorf("storageOwner = %s, %d, %v; want %s, 65534 (the link's owner)", p, uid, ok, certs)
	}

	// The administrator's link to a storage the user owns.
	real := t.TempDir()
	if err := os.Chown(real, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "storage")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, uid, ok := storageOwner(link); !ok || uid != 65534 {
		t.Errorf("storage reached by root's link: owner %d, %v; want 65534", uid, ok)
	}
}
