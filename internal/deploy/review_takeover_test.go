package deploy

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReviewOtherUsersFileNotGivenAway: the service user who may write
// the deploy folder creates the fullchain file itself (the certificate
// is public, so it knows the content) and keeps it open for writing.
// With owner root configured, tlspilot must replace that file, not
// chown it to root in place: the service user would go on writing to a
// file of root's.
func TestReviewOtherUsersFileNotGivenAway(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: files of another user")
	}
	chain, key := testPEM(t, "a.example")
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	o := Options{Fullchain: filepath.Join(dir, "fullchain.pem"), Owner: "0", Group: "0"}
	f := newFiles(t, o)
	if err := os.WriteFile(o.Fullchain, chain, PublicMode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(o.Fullchain, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	held, err := os.OpenFile(o.Fullchain, os.O_WRONLY, 0) // the service user's descriptor
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := f.Write(t.Context(), chain, key); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(held.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid == 0 {
		t.Error("the file the service user holds open for writing was given to root")
	}
	if uid, gid := owner(t, o.Fullchain); uid != 0 || gid != 0 {
		t.Errorf("fullchain owned by %d:%d, want 0:0", uid, gid)
	}
	if in, err := f.InPlace(t.Context(), chain, key); err != nil || !in {
		t.Errorf("InPlace = %v, %v; want true", in, err)
	}
}
