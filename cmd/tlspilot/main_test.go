package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain removes the binary buildBinary built (14 MB) once every test
// has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestBinaryVersion: the built binary prints its version.
func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(buildBinary(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tlspilot ") {
		t.Errorf("tlspilot version: %v %q", err, out)
	}
}

// TestNoTempLeftBehind: a test run that builds the binary leaves nothing
// in the temporary directory.
func TestNoTempLeftBehind(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestBinaryVersion$", ".")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test: %v\n%s", err, out)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in the temporary directory: %s", e.Name())
	}
}
