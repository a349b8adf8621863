package keys

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// checkMode fails the test unless path has exactly the permission bits want.
func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", path, got, want)
	}
}

// checkSameKEK fails the test unless a and b use the same KEK.
func checkSameKEK(t *testing.T, a, b *Sealer) {
	t.Helper()
	key := mustGenerate(t, ECDSAP256)
	if _, err := b.OpenKey(mustSeal(t, a, key, "x"), "x"); err != nil {
		t.Errorf("sealers differ: %v", err)
	}
}

// writeFile creates path with data and then sets mode exactly (ignoring
// the umask).
func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateSealerCreates(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "kek")
	s1, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatalf("LoadOrCreateSealer: %v", err)
	}
	checkMode(t, path, 0o400)
	checkMode(t, filepath.Join(root, "a"), 0o700)
	checkMode(t, filepath.Join(root, "a", "b"), 0o700)
	kek, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(kek) != KEKSize || bytes.Equal(kek, make([]byte, KEKSize)) {
		t.Fatalf("KEK file holds %d bytes %x, want 32 random bytes", len(kek), kek)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the KEK (temp file left behind?)", len(entries))
	}

	s2, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateSealer: %v", err)
	}
	checkSameKEK(t, s1, s2)
	fromBytes, err := NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	checkSameKEK(t, s1, fromBytes)
	if after, _ := os.ReadFile(path); !bytes.Equal(after, kek) {
		t.Errorf("second call rewrote the KEK file")
	}
}

func TestLoadOrCreateSealerRefuses(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		mode    fs.FileMode
		wantMsg string
	}{
		{"mode 0644", KEKSize, 0o644, "too open"},
		{"mode 0440", KEKSize, 0o440, "too open"},
		{"mode 0404", KEKSize, 0o404, "too open"},
		{"mode 0420", KEKSize, 0o420, "too open"},
		{"mode 0402", KEKSize, 0o402, "too open"},
		{"empty", 0, 0o400, "has 0 bytes"},
		{"short", 16, 0o400, "has 16 bytes"},
		{"long", 33, 0o400, "has 33 bytes"},
		{"much longer", 4096, 0o600, "has 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek")
			data := randBytes(tt.size)
			writeFile(t, path, data, tt.mode)
			s, err := LoadOrCreateSealer(path)
			if err == nil || s != nil {
				t.Fatalf("LoadOrCreateSealer = %v, %v; want error", s, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %s and say %q", err, path, tt.wantMsg)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Errorf("KEK file was modified")
			}
			checkMode(t, path, tt.mode)
		})
	}
}

func TestLoadOrCreateSealerOwnerWritableAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	kek := randBytes(KEKSize)
	writeFile(t, path, kek, 0o600)
	s, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatalf("LoadOrCreateSealer on a 0600 file: %v", err)
	}
	want, _ := NewSealer(kek)
	checkSameKEK(t, s, want)
}

func TestLoadOrCreateSealerNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSealer(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadOrCreateSealer on a directory: error %v, want one naming %s", err, path)
	}
}

func TestLoadOrCreateSealerConcurrent(t *testing.T) {
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "kekdir")
		path := filepath.Join(dir, "kek")
		const n = 8
		sealers := make([]*Sealer, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				sealers[i], errs[i] = LoadOrCreateSealer(path)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d goroutine %d: %v", round, i, err)
			}
		}
		for i := 1; i < n; i++ {
			checkSameKEK(t, sealers[0], sealers[i])
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("round %d: directory holds %d entries, want 1", round, len(entries))
		}
	}
}

// TestLoadOrCreateSealerSharedByRoot: a KEK file root owns may be
// readable by its group (root:GROUP 0440, as `tlspilot init --user`
// leaves it for the group `certs` runs as); group read of a file another
// user owns, or of root's own group, group write and any access for
// others are still refused, and nothing is rewritten. It needs root to
// give files away; anywhere else it fails, since it cannot show what it
// is meant to.
func TestLoadOrCreateSealerSharedByRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to give the KEK file to root and another group")
	}
	const other = 65534 // nobody, nogroup
	tests := []struct {
		name     string
		uid, gid int
		mode     fs.FileMode
		ok       bool
	}{
		{"root:other 0440", 0, other, 0o440, true},
		{"root:other 0640", 0, other, 0o640, true},
		{"root:root 0440", 0, 0, 0o440, false},
		{"other:other 0440", other, other, 0o440, false},
		{"root:other 0460", 0, other, 0o460, false},
		{"root:other 0444", 0, other, 0o444, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek")
			kek := randBytes(KEKSize)
			writeFile(t, path, kek, tt.mode)
			if err := os.Chown(path, tt.uid, tt.gid); err != nil {
				t.Fatal(err)
			}
			s, err := LoadOrCreateSealer(path)
			if tt.ok {
				if err != nil {
					t.Fatalf("LoadOrCreateSealer: %v", err)
				}
				want, _ := NewSealer(kek)
				checkSameKEK(t, s, want)
				return
			}
			if err == nil || !strings.Contains(err.Error(), "too open") || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadOrCreateSealer: %v, want an error naming %s and saying it is too open", err, path)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, kek) {
				t.Error("KEK file was modified")
			}
		})
	}
}
