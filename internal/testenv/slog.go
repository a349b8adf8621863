package testenv

import (
	"log/slog"
	"testing"
)

// Logger returns a logger (level Info) whose output is kept, its last
// MiB, and printed with t.Log only if t fails: quiet when a test
// passes, complete when it does not. It may be written to after the
// test ended.
func Logger(t *testing.T) *slog.Logger {
	t.Helper()
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", l.String())
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
