package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveLogged starts `tlspilot serve` with its output in a buffer the test
// reads while it runs, and stops it at cleanup.
func (e *env) serveLogged() (*exec.Cmd, *syncBuffer) {
	e.t.Helper()
	cmd := exec.Command(buildBinary(e.t), "serve", "--config", e.conf)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			e.t.Logf("tlspilot output:\n%s", out.String())
		}
	})
	return cmd, out
}

// waitCount waits until s occurs n times in out.
func waitCount(t *testing.T, out *syncBuffer, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q seen %d times, want %d", s, strings.Count(out.String(), s), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadRestartOnlyWarning: SIGHUP warns that a setting changes only on
// restart by comparing with the config serve runs with, not the last one
// loaded: a second change warns again, a restored value does not.
func TestReloadRestartOnlyWarning(t *testing.T) {
	e := newEnv(t)
	site := fmt.Sprintf("[[site]]\nnames = [\"a.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www"))
	e.config(site)
	cmd, out := e.serveLogged()
	waitCount(t, out, "msg=serving", 1)
	const warn = "this setting changes only on restart"
	steps := []struct {
		email string
		warns int // warnings seen so far
	}{
		{"b@example.test", 1},   // changed: warn
		{"c@example.test", 2},   // changed again: warn again
		{"c@example.test", 3},   // reloaded again, still not in effect: warn
		{"ops@example.test", 3}, // restored: no warning
	}
	for i, s := range steps {
		write(t, e.conf, strings.Replace(readFile(t, e.conf), emailLine(t, e.conf), "email = \""+s.email+"\"", 1))
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitCount(t, out, "config reloaded", i+1)
		if got := strings.Count(out.String(), warn); got != s.warns {
			t.Errorf("after email = %q: %d warnings, want %d", s.email, got, s.warns)
		}
	}
}

// emailLine returns the email line of the config file at path.
func emailLine(t *testing.T, path string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if strings.HasPrefix(l, "email = ") {
			return l
		}
	}
	t.Fatalf("no email line in %s", path)
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
