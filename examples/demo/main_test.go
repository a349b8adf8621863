package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the demo once: three sites served with certificates from
// the test CA, and curl commands printed for each.
func TestDemo(t *testing.T) {
	// The demo builds ./cmd/tlspilot from the repository root.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(wd, "..", ".."))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-check", "-dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, n := range siteNames() {
		if !strings.Contains(out.String(), "curl --resolve "+n+":") {
			t.Errorf("no curl command for %s in:\n%s", n, out.String())
		}
	}
}
