//go:build unix

package keys

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestTrialKEKFileFIFO: a kek_file that is a FIFO (a named pipe left at
// the path, a process substitution given as the path) is refused at once
// as not a regular file, by LoadOrCreateSealer and CheckKEKFile alike:
// the open waited for a writer for ever, and serve, check or migrate hung
// at start without a word.
func TestTrialKEKFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	if err := syscall.Mkfifo(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSealer(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadOrCreateSealer of a FIFO: %v; want it refused as not a regular file", err)
	}
	if err := CheckKEKFile(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("CheckKEKFile of a FIFO: %v; want it refused as not a regular file", err)
	}
}
