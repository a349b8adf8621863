package deploy

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestReloads: Reloads says whether a reload is configured, so that a
// deploy with none is not logged as reloaded.
func TestReloads(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		opts Options
		want bool
	}{
		{"none", Options{Fullchain: filepath.Join(dir, "f.pem")}, false},
		{"command", Options{Fullchain: filepath.Join(dir, "f.pem"), Reload: []string{"true"}}, true},
		{"signal", Options{Fullchain: filepath.Join(dir, "f.pem"), PIDFile: filepath.Join(dir, "x.pid"), Signal: syscall.SIGHUP}, true},
	} {
		f, err := New(tt.opts)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := f.Reloads(); got != tt.want {
			t.Errorf("%s: Reloads() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
