package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// gate is a script that records its certificate id, then waits until the
// file "open" exists in dir (or 60 s pass).
func gate(t *testing.T, dir string) string {
	t.Helper()
	return script(t, dir, "hook", `dir=$1
touch "$dir/started-$3"
i=0
while [ ! -e "$dir/open" ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done
echo "$3" >> "$dir/done"
`)
}

func event(id string) tlspilot.Event {
	return tlspilot.Event{Type: tlspilot.EventRenewed, CertID: id, Names: []string{id + ".example"}}
}

// TestQueueFullDrops: with the one worker busy and the queue full, Notify
// returns at once and the dropped notification is logged at ERROR.
func TestQueueFullDrops(t *testing.T) {
	dir := t.TempDir()
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{gate(t, dir), dir}, Workers: 1, Queue: 1, Logger: l.logger()})
	n.Notify(event("first"))
	waitFile(t, filepath.Join(dir, "started-first"), 10*time.Second)
	start := time.Now()
	n.Notify(event("second")) // queued
	n.Notify(event("third"))  // dropped
	if d := time.Since(start); d > time.Second {
		t.Errorf("Notify blocked for %v", d)
	}
	if err := os.WriteFile(filepath.Join(dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, n, 30*time.Second)
	if got := waitFile(t, filepath.Join(dir, "done"), time.Second); got != "first\nsecond\n" {
		t.Errorf("ran %q, want first and second", got)
	}
	r := l.records(t, "notification dropped: queue full")
	if len(r) != 1 || r[0]["cert"] != "third" || r[0]["level"] != "ERROR" || r[0]["event"] != "renewed" {
		t.Errorf("log:\n%s", l)
	}
}

// TestCloseWaitsForHooks: Close returns once the hooks queued and running
// have finished.
func TestCloseWaitsForHooks(t *testing.T) {
	dir := t.TempDir()
	n := newNotifier(t, Options{Command: []string{gate(t, dir), dir}, Workers: 1})
	n.Notify(event("a"))
	n.Notify(event("b"))
	waitFile(t, filepath.Join(dir, "started-a"), 10*time.Second)
	closed := make(chan error, 1)
	go func() { closed <- n.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a hook ran", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := os.WriteFile(filepath.Join(dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "done")); string(got) != "a\nb\n" {
		t.Errorf("ran %q before Close returned, want a and b", got)
	}
	n.Notify(event("late")) // dropped, no panic
}

// TestCloseDeadlineKills: when Close's context ends first, the hook that
// runs is killed and the one queued dropped, each logged.
func TestCloseDeadlineKills(t *testing.T) {
	dir := t.TempDir()
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{gate(t, dir), dir}, Workers: 1, Logger: l.logger()})
	n.Notify(event("a"))
	n.Notify(event("b"))
	waitFile(t, filepath.Join(dir, "started-a"), 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := n.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		t.Error("a hook finished; it should have been killed")
	}
	if r := l.records(t, "notify command killed at shutdown"); len(r) != 1 || r[0]["cert"] != "a" {
		t.Errorf("log:\n%s", l)
	}
	if r := l.records(t, "notification dropped at shutdown"); len(r) != 1 || r[0]["cert"] != "b" {
		t.Errorf("log:\n%s", l)
	}
}

// TestNilNotifier: a nil Notifier, as serve has without notify keys,
// does nothing.
func TestNilNotifier(t *testing.T) {
	var n *Notifier
	n.Notify(event("a"))
	if err := n.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{Command: []string{""}}, "notify: command: empty program name"},
		{Options{Webhook: "ftp://example.com/"}, `notify: webhook: want an http or https URL`},
		{Options{Webhook: "https:///path"}, "want an http or https URL"},
		{Options{WebhookSecret: []byte("k")}, "notify: webhook secret given without a webhook"},
		{Options{Webhook: "https://example.com/", WebhookSecret: []byte{}}, "notify: webhook secret is empty"},
	} {
		n, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.opts, err, tt.want)
		}
		if n != nil {
			t.Errorf("%+v: a Notifier with the error", tt.opts)
		}
	}
}

// TestReadSecret: the secret file is refused when group or others may
// read it, as ssh does with private keys.
func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.secret", "  s3cret with spaces inside \n", 0o600)
	if b, err := ReadSecret(good); err != nil || string(b) != "s3cret with spaces inside" {
		t.Errorf("got %q, %v", b, err)
	}
	if b, err := ReadSecret(write("ro.secret", "k", 0o400)); err != nil || string(b) != "k" {
		t.Errorf("mode 0400: got %q, %v", b, err)
	}
	for _, tt := range []struct{ path, want string }{
		{write("group.secret", "k", 0o640), "secret file " + dir + "/group.secret is readable by group or others (mode 0640; want 0600 or 0400)"},
		{write("others.secret", "k", 0o604), "is readable by group or others (mode 0604; want 0600 or 0400)"},
		{write("empty.secret", " \n", 0o600), "secret file " + dir + "/empty.secret is empty"},
		{dir, "secret file " + dir + " is not a regular file"},
		{filepath.Join(dir, "none"), "no such file"},
	} {
		if _, err := ReadSecret(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.path, err, tt.want)
		}
	}
}
