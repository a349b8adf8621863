package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckKEKFile: CheckKEKFile refuses what LoadOrCreateSealer refuses
// in an existing KEK file, with the same message, creates nothing, and
// every KEK file error of both is a *FileError naming the path.
func TestCheckKEKFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		data []byte
		mode fs.FileMode
		want string
	}{
		{"too open", bytes.Repeat([]byte("k"), KEKSize), 0o644, "permissions 0644 are too open"},
		{"short", bytes.Repeat([]byte("k"), 16), 0o400, "has 16 bytes, want 32"},
		{"long", bytes.Repeat([]byte("k"), 40), 0o400, "has 40 bytes, want 32"},
		{"group writable", bytes.Repeat([]byte("k"), KEKSize), 0o620, "permissions 0620 are too open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			writeFile(t, path, tt.data, tt.mode)
			cerr := CheckKEKFile(path)
			_, lerr := LoadOrCreateSealer(path)
			if cerr == nil || !strings.Contains(cerr.Error(), tt.want) || lerr == nil || cerr.Error() != lerr.Error() {
				t.Fatalf("CheckKEKFile: %v\nLoadOrCreateSealer: %v\nwant both %q", cerr, lerr, tt.want)
			}
			for _, err := range []error{cerr, lerr} {
				var fe *FileError
				if !errors.As(err, &fe) || fe.Path != path {
					t.Errorf("%v: not a *FileError for %s", err, path)
				}
			}
		})
	}
	good := filepath.Join(dir, "good")
	writeFile(t, good, bytes.Repeat([]byte("k"), KEKSize), 0o400)
	if err := CheckKEKFile(good); err != nil {
		t.Errorf("good KEK file: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	var fe *FileError
	if err := CheckKEKFile(missing); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &fe) {
		t.Errorf("missing KEK file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckKEKFile created %s: %v", missing, err)
	}
}
