package deploy

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExistingLinkNeverFollowed: what sits at a deploy path that is not
// a regular file of its own (a symbolic link, a hard link, a FIFO) is
// never read through, written, chmodded nor chowned through: the service
// user who may write the deploy folder (PostgreSQL's data directory,
// owned by postgres) could otherwise point the key's path at another
// file (a copy of the key it can read, swapped for /etc/shadow once
// compared) and have tlspilot, running as root to give files away, chown
// that file to it; or leave a FIFO there and hang every deploy. The
// entry is replaced by a regular file instead, and InPlace never
// reports it as in place.
func TestExistingLinkNeverFollowed(t *testing.T) {
	chain, key := testPEM(t, "a.example")
	tests := []struct {
		name  string
		plant func(t *testing.T, path, victim string)
	}{
		{"symlink to a file with the key", func(t *testing.T, path, victim string) {
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, path, victim string) {
			if err := os.Symlink(victim+".missing", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"hard link to a file with the key", func(t *testing.T, path, victim string) {
			if err := os.Link(victim, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo", func(t *testing.T, path, _ string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			victim := filepath.Join(elsewhere, "shadow")
			if err := os.WriteFile(victim, key, 0o644); err != nil {
				t.Fatal(err)
			}
			o := Options{Privkey: filepath.Join(dir, "privkey.pem"), Mode: 0o600}
			if os.Geteuid() == 0 {
				o.Owner, o.Group = "65534", "65534"
			}
			f := newFiles(t, o)
			tt.plant(t, o.Privkey, victim)
			before := victimState(t, victim)
			var in, changed bool
			var inErr, err error
			within(t, o.Privkey, func() { in, inErr = f.InPlace(t.Context(), chain, key) })
			if inErr != nil || in {
				t.Errorf("InPlace = %v, %v; want false", in, inErr)
			}
			within(t, o.Privkey, func() { changed, err = f.Write(t.Context(), chain, key) })
			if err != nil || !changed {
				t.Errorf("Write = %v, %v; want the entry replaced", changed, err)
			}
			if after := victimState(t, victim); after != before {
				t.Errorf("the linked file changed: %s, then %s", before, after)
			}
			fi, err := os.Lstat(o.Privkey)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Fatalf("privkey afterwards: %v, %v; want a regular file of its own, 0600", fi, err)
			}
			if in, err := f.InPlace(t.Context(), chain, key); err != nil || !in {
				t.Errorf("InPlace after Write = %v, %v; want true", in, err)
			}
		})
	}
}

// victimState describes a file's mode, owner and content.
func victimState(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%v %d:%d %x", fi.Mode(), st.Uid, st.Gid, sha256.Sum256(b))
}

// within runs fn and fails the test if it does not return within 10 s;
// a call stuck opening a FIFO at path is set free by opening its other
// end.
func within(t *testing.T, path string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("blocked for 10 s on what sits at the deploy path")
	}
}

// TestFolderLinkOfAnotherUserRefused: a symbolic link on the way to the
// deploy folder is followed only when root or the running user owns it.
// PostgreSQL's folders above its data directory are postgres's own
// (/var/lib/postgresql/16): postgres could replace main/ by a link to
// /etc and have tlspilot, running as root, create there a file postgres
// owns (or replace another program's). Links the administrator made
// (root's, or the running user's) keep working, relative or absolute.
func TestFolderLinkOfAnotherUserRefused(t *testing.T) {
	chain, key := testPEM(t, "a.example")
	for _, tt := range []struct {
		name     string
		uid      int // owner of the link
		relative bool
		refused  bool
	}{
		{"own link, absolute", os.Geteuid(), false, false},
		{"own link, relative", os.Geteuid(), true, false},
		{"root's link", 0, false, false},
		{"service user's link", 65534, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid != os.Geteuid() && os.Geteuid() != 0 {
				t.Fatalf("needs root to give a link to uid %d", tt.uid)
			}
			svc, elsewhere := t.TempDir(), t.TempDir()
			target := elsewhere
			if tt.relative {
				rel, err := filepath.Rel(svc, elsewhere)
				if err != nil {
					t.Fatal(err)
				}
				target = rel
			}
			link := filepath.Join(svc, "main")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, tt.uid, tt.uid); err != nil {
				t.Fatal(err)
			}
			f := newFiles(t, Options{Privkey: filepath.Join(link, "server.key"), Cert: filepath.Join(link, "server.crt")})
			changed, err := f.Write(t.Context(), chain, key)
			entries, _ := os.ReadDir(elsewhere)
			if !tt.refused {
				if err != nil || !changed || len(entries) != 2 {
					t.Fatalf("Write = %v, %v; %d files where the link points, want 2", changed, err, len(entries))
				}
				return
			}
			t.Logf("Write: %v", err)
			if err == nil || !strings.Contains(err.Error(), link+" is a symbolic link owned by uid 65534") {
				t.Errorf("Write = %v, %v; want the link refused", changed, err)
			}
			if len(entries) != 0 {
				t.Errorf("%d files created where the link points", len(entries))
			}
			if in, err := f.InPlace(t.Context(), chain, key); in || err != nil {
				t.Errorf("InPlace = %v, %v; want false", in, err)
			}
		})
	}
}
