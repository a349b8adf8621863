package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInPlace: InPlace is true only when Write would leave every file as
// it is (content, mode); anything Write would rewrite or correct makes it
// false, and it never writes.
func TestInPlace(t *testing.T) {
	chain, key := testPEM(t, "a.example.test")
	newChain, newKey := testPEM(t, "b.example.test")
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		chain  []byte
		key    []byte
		want   bool
	}{
		{"as written", func(*testing.T, string) {}, chain, key, true},
		{"another certificate", func(*testing.T, string) {}, newChain, newKey, false},
		{"file missing", func(t *testing.T, dir string) { rm(t, filepath.Join(dir, "chain.pem")) }, chain, key, false},
		{"file changed", func(t *testing.T, dir string) {
			put(t, filepath.Join(dir, "combined.pem"), strings.Repeat("stale ", 10), 0o600)
		}, chain, key, false},
		{"mode changed", func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, "privkey.pem"), 0o644) }, chain, key, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newFiles(t, allFiles(dir))
			if _, err := f.Write(t.Context(), chain, key); err != nil {
				t.Fatal(err)
			}
			tt.change(t, dir)
			before := snapshot(t, dir)
			got, err := f.InPlace(t.Context(), tt.chain, tt.key)
			if err != nil || got != tt.want {
				t.Errorf("InPlace = %v, %v; want %v", got, err, tt.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("InPlace changed the directory:\n%s\nthen\n%s", before, after)
			}
		})
	}
	if _, err := newFiles(t, allFiles(t.TempDir())).InPlace(t.Context(), []byte("no PEM"), key); err == nil {
		t.Error("InPlace of a chain without a certificate: no error")
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
