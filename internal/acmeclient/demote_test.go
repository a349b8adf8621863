package acmeclient

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestDemoteInfo: acmez's info records (its "got renewal info" shows a
// renewal time of its own drawing) reach tlspilot's log at debug only;
// its warnings and errors as they are, except for a request whose
// context has ended (a Manager stopping): acmez's "HTTP request failed;
// retrying ... context canceled" is no fault.
func TestDemoteInfo(t *testing.T) {
	var buf bytes.Buffer
	info := demoteInfo(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "acme"))
	info.Info("got renewal info", "selected_time", "x")
	info.Warn("something odd")
	info.LogAttrs(context.Background(), slog.LevelError, "failed")
	if out := buf.String(); strings.Contains(out, "got renewal info") || !strings.Contains(out, "level=WARN msg=\"something odd\" component=acme") ||
		!strings.Contains(out, "level=ERROR msg=failed") {
		t.Errorf("at info level the log has:\n%s", out)
	}
	buf.Reset()
	debug := demoteInfo(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	debug.Info("got renewal info")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG msg=\"got renewal info\"") {
		t.Errorf("at debug level the log has:\n%s", out)
	}
	buf.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	info.LogAttrs(ctx, slog.LevelWarn, "HTTP request failed; retrying", slog.String("error", "context canceled"))
	if out := buf.String(); out != "" {
		t.Errorf("a warning about a cancelled request reached the info log:\n%s", out)
	}
	if demoteInfo(nil) != nil {
		t.Error("a nil logger is not kept nil")
	}
}
