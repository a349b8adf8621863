package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		args   func(dir string) []string
		names  []string
		key    string
		useDir bool
	}{
		{"defaults", func(string) []string { return nil },
			[]string{"example.test", "www.example.test"}, "ECDSA P-256", false},
		{"rsa in a given dir", func(dir string) []string {
			return []string{"-names", "a.example.test, b.example.test", "-key-type", "rsa2048", "-dir", dir}
		}, []string{"a.example.test", "b.example.test"}, "RSA 2048 bits", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "storage")
			var out bytes.Buffer
			if err := run(t.Context(), tt.args(dir), &out); err != nil {
				t.Fatalf("run: %v\noutput:\n%s", err, &out)
			}
			got := out.String()
			for _, name := range tt.names {
				if !strings.Contains(got, name+": verified") {
					t.Errorf("output does not say %s was verified:\n%s", name, got)
				}
			}
			for _, want := range []string{tt.key, "no private key in clear"} {
				if !strings.Contains(got, want) {
					t.Errorf("output does not mention %q:\n%s", want, got)
				}
			}
			if tt.useDir {
				if _, err := os.Stat(filepath.Join(dir, "kek")); err != nil {
					t.Errorf("-dir %s was not used or not kept: %v", dir, err)
				}
			}
		})
	}
}

func TestRunBadInput(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "old"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-key-type", "dsa"}, "-key-type"},
		{[]string{"-names", " , "}, "no name"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-dir", full}, "not empty"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(t.Context(), tt.args, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}
