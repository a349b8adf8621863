package fsstore_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTrialLoadOnlyRegularFiles: a value whose file was replaced by a
// symbolic link, a FIFO or a device (by whoever else writes the
// directory) is not read through it: List never reports such a file,
// yet Load followed a link out of the storage (a command run as root
// copied another file's content; a link to /dev/zero read without end)
// and blocked for ever on a FIFO, whatever its ctx. Load refuses them,
// saying what the file is.
func TestTrialLoadOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, time.Minute, true)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("not the storage's"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"certs/link/cert.json", "certs/fifo/cert.json", "certs/dev/cert.json"} {
		if err := s.Store(t.Context(), k, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data", "certs")
	replace := func(name string, make func(path string) error) {
		t.Helper()
		path := filepath.Join(data, name, "cert.json")
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := make(path); err != nil {
			t.Fatal(err)
		}
	}
	replace("link", func(p string) error { return os.Symlink(secret, p) })
	replace("fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) })
	replace("dev", func(p string) error { return os.Symlink("/dev/null", p) })
	keys, err := s.List(t.Context(), "certs")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("List = %q, want none of the replaced files", keys)
	}
	for _, name := range []string{"link", "fifo", "dev"} {
		// The FIFO is never written: a Load that opens it for reading
		// blocks until the test binary's -timeout.
		v, err := s.Load(t.Context(), "certs/"+name+"/cert.json")
		if err == nil {
			t.Errorf("Load of certs/%s/cert.json read %q through a file that is not a value", name, v)
			continue
		}
		if errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load of certs/%s/cert.json: %v; want an error saying it is not a regular file", name, err)
		}
	}
}

// TestTrialLoadNoLinkedFolder: a folder of keys replaced by a symbolic
// link (by whoever else writes the directory) is not read through
// either: List does not report what is behind it, yet Load followed
// the link at the folder's name out of the storage, reading another
// file as the value (TestTrialLoadOnlyRegularFiles covers only a link at
// the value's own name). A storage directory that is itself a link is
// still read.
func TestTrialLoadNoLinkedFolder(t *testing.T) {
	real := t.TempDir()
	dir := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, dir); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, time.Minute, true)
	if err := s.Store(t.Context(), "certs/ok/cert.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(t.Context(), "certs/ok/cert.json"); err != nil || string(v) != "{}" {
		t.Errorf("Load through the linked storage directory = %q, %v; want {}", v, err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "cert.json"), []byte("not the storage's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(real, "data", "certs", "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(real, "data", "certs"), filepath.Join(real, "data", "alias")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"certs/evil/cert.json", "alias/ok/cert.json"} {
		v, err := s.Load(t.Context(), k)
		if err == nil {
			t.Errorf("Load of %s read %q through a linked folder", k, v)
			continue
		}
		if errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Load of %s: %v; want an error saying a folder is a symbolic link", k, err)
		}
	}
}

// TestTrialLockFileNotRegular: a FIFO put in place of a lock file (by
// whoever else writes the directory) made Lock open it for reading and
// wait for a writer for ever, whatever its ctx, as Load did before it
// read only regular files. Lock refuses it, saying what the file is.
func TestTrialLockFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, time.Minute, true)
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "locks", "fifo.lock"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The FIFO is never written: a Lock that opens it for reading
	// blocks until the test binary's -timeout.
	l, err := s.Lock(t.Context(), "fifo")
	if err == nil {
		_ = l.Unlock(t.Context())
		t.Fatal("Lock over a FIFO lock file succeeded")
	}
	if !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Lock over a FIFO lock file: %v; want an error saying it is not a regular file", err)
	}
}
