package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// logs records what a Notifier logs, as JSON records.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the records whose message contains msg.
func (l *logs) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(r["msg"].(string), msg) {
			out = append(out, r)
		}
	}
	return out
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// script writes an executable /bin/sh script with body into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// newNotifier returns a Notifier closed at the end of the test.
func newNotifier(t *testing.T, opts Options) *Notifier {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// closeWithin closes n, failing the test if that takes longer than d.
func closeWithin(t *testing.T, n *Notifier, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// waitFile waits until path exists and returns its content.
func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidIn reads a process id written to path.
func pidIn(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(waitFile(t, path, 10*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether process pid runs (a zombie, dead but not yet
// reaped by its parent, does not count).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE …
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitDead waits until none of pids runs.
func waitDead(t *testing.T, timeout time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// failed is a renew-failed event with every field set.
func failed() tlspilot.Event {
	return tlspilot.Event{
		Type:     tlspilot.EventFailed,
		CertID:   "example.com-ecdsa-p256",
		Names:    []string{"example.com", "www.example.com"},
		KeyType:  tlspilot.KeyType("ecdsa-p256"),
		Time:     time.Date(2026, 2, 20, 8, 0, 0, 123, time.FixedZone("CET", 3600)),
		NotAfter: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Attempt:  3,
		RetryAt:  time.Date(2026, 2, 20, 7, 15, 0, 0, time.UTC),
		Err:      errors.New("obtain example.com: line one\nline 'two' with \"quotes\" and $HOME"),
	}
}
