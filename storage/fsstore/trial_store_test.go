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
