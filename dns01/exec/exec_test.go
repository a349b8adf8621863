package exec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/exec"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "calls")
	hook := script(t, `echo "$1 $2 $3 $TLSPILOT_DNS_ZONE" >> `+out+"\n")
	p, err := exec.New(exec.Options{Command: hook})
	if err != nil {
		t.Fatal(err)
	}
	recs := []dns01.Record{
		{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v1"},
		{FQDN: "www.acme.test.", Zone: "acme.test.", Value: "v2"},
	}
	if err := p.Present(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if err := p.CleanUp(t.Context(), recs[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "present _acme-challenge.example.test. v1 example.test.\n" +
		"present www.acme.test. v2 acme.test.\n" +
		"cleanup _acme-challenge.example.test. v1 example.test.\n"
	if string(got) != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestFailures(t *testing.T) {
	rec := []dns01.Record{{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v"}}
	fail := script(t, "echo 'api said: 403 forbidden' >&2\nexit 3\n")
	p, err := exec.New(exec.Options{Command: fail})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Present(t.Context(), rec)
	want := "exec: " + fail + " present _acme-challenge.example.test. (zone example.test): exit status 3: api said: 403 forbidden"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	if errors.Is(err, dns01.ErrUnchanged) {
		t.Error("a program that ran may have changed something, but the error wraps ErrUnchanged")
	}

	slow := script(t, "sleep 10\n")
	p, err = exec.New(exec.Options{Command: slow, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.CleanUp(t.Context(), rec)
	if err == nil || !strings.Contains(err.Error(), "killed after 200ms") {
		t.Fatalf("error = %v, want it killed after the timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("CleanUp took %v with a 200ms timeout", d)
	}

	if _, err := exec.New(exec.Options{Command: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("New with a missing command: no error")
	}
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.New(exec.Options{Command: notExec}); err == nil {
		t.Error("New with a file that is not executable: no error")
	}
}
