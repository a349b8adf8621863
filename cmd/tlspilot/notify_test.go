package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/renewal"
)

// TestServeNotifyCommand: the built `tlspilot serve` runs notify_command
// with the event, certificate id and names when it obtains a
// certificate, and the expiry it reports is the served certificate's.
func TestServeNotifyCommand(t *testing.T) {
	e := newEnv(t)
	events := filepath.Join(e.dir, "events")
	hook := filepath.Join(e.dir, "hooks", "on-event")
	write(t, hook, `#!/bin/sh
dir=$1; shift
{ echo "$*"; env | grep '^TLSPILOT_' | sort; } > "$dir/.$$" && mv "$dir/.$$" "$dir/$1-$$"
`)
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(events, 0o755); err != nil {
		t.Fatal(err)
	}
	e.config(fmt.Sprintf(`notify_command = ["./hooks/on-event", %q]
notify_timeout = "20s"
warn_window = "7d"

[[site]]
names = ["notify.example.test", "www.notify.example.test"]
root = %q
`, events, filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("notify.example.test", 60*time.Second)
	got := waitEventFile(t, events, "obtained", 30*time.Second)

	c, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "notify.example.test", RootCAs: e.roots})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := c.ConnectionState().PeerCertificates[0].NotAfter.UTC().Format(time.RFC3339)
	c.Close()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	id := envValue(lines, "TLSPILOT_CERT_ID")
	want := []string{
		"obtained " + id + " notify.example.test www.notify.example.test",
		"TLSPILOT_ATTEMPT=0",
		"TLSPILOT_CERT_ID=" + id,
		"TLSPILOT_ERROR=",
		"TLSPILOT_EVENT=obtained",
		"TLSPILOT_KEY_TYPE=ecdsa-p256",
		"TLSPILOT_NAMES=notify.example.test www.notify.example.test",
		"TLSPILOT_NOT_AFTER=" + notAfter,
		"TLSPILOT_RETRY_AT=",
	}
	if id == "" || len(lines) != len(want)+1 || strings.Join(lines[:len(want)], "\n") != strings.Join(want, "\n") ||
		!strings.HasPrefix(lines[len(want)], "TLSPILOT_TIME=") {
		t.Errorf("hook got\n%s\nwant\n%s\nTLSPILOT_TIME=…", got, strings.Join(want, "\n"))
	}

	// `tlspilot revoke` tells the same hooks: no other process would (the
	// daemon takes the revocation up silently).
	if code, out, errOut := runBinary(t, "revoke", "--config", e.conf, "notify.example.test"); code != 0 {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, errOut)
	}
	if got := waitEventFile(t, events, "revoked", 10*time.Second); !strings.HasPrefix(got, "revoked "+id+" notify.example.test") {
		t.Errorf("revoked hook got\n%s", got)
	}
}

// waitEventFile waits for a file the hook of TestServeNotifyCommand wrote
// for event and returns its content.
func waitEventFile(t *testing.T, dir, event string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m, _ := filepath.Glob(filepath.Join(dir, event+"-*"))
		if len(m) > 0 {
			b, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s event within %v", event, timeout)
	return ""
}

func envValue(lines []string, key string) string {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestNotifyConfigRefused: a group-readable webhook secret is refused by
// check and serve at its file, line and key, before anything starts.
func TestNotifyConfigRefused(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "webhook.secret")
	writeFile(t, secret, "s3cret\n")
	if err := os.Chmod(secret, 0o640); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, "agree_terms = true\nnotify_webhook = \"https://hooks.example.com/tls\"\nnotify_webhook_secret_file = \"webhook.secret\"\n")
	want := path + ":3: notify_webhook_secret_file: " + secret + " is readable by group or others (want mode 0600 or 0400)"
	for _, cmd := range []string{"check", "serve"} {
		code, out, errOut := runCLI(t, cmd, "--config", path)
		if code != 1 || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 1 and %q", cmd, code, errOut, out, want)
		}
	}
}

// TestManagerConfigWarnWindow: warn_window reaches the Manager's Config.
func TestManagerConfigWarnWindow(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]renewal.WarnWindow{
		"":                      {Fraction: 0.10},
		`warn_window = "7d"`:    {Duration: 7 * 24 * time.Hour},
		`warn_window = "72h"`:   {Duration: 72 * time.Hour},
		`warn_window = "12.5%"`: {Fraction: 0.125},
	} {
		cfg, err := config.Parse(filepath.Join(dir, "tlspilot.toml"), []byte("agree_terms = true\n"+in))
		if err != nil {
			t.Fatal(err)
		}
		mc, err := managerConfig(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if mc.WarnWindow != want {
			t.Errorf("%s: Config.WarnWindow = %+v, want %+v", in, mc.WarnWindow, want)
		}
	}
}

// TestRestartOnlyNotify: a reload that changes notify_* keys or
// warn_window names them in the restart-only warning.
func TestRestartOnlyNotify(t *testing.T) {
	dir := t.TempDir()
	parse := func(text string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "tlspilot.toml"), []byte("agree_terms = true\n"+text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	none := parse("")
	cmd := parse("notify_command = [\"true\", \"a\"]\n")
	tests := []struct {
		a, b *config.Config
		want []string
	}{
		{none, none, nil},
		{cmd, parse("notify_command = [\"true\", \"a\"]\nnotify_timeout = \"30s\"\n"), nil},
		{none, cmd, []string{"notify_command"}},
		{cmd, none, []string{"notify_command"}},
		{cmd, parse("notify_command = [\"true\", \"b\"]\nnotify_timeout = \"5s\"\n"), []string{"notify_command", "notify_timeout"}},
		{cmd, parse("notify_webhook = \"http://127.0.0.1/x\"\n"), []string{"notify_command", "notify_webhook"}},
		{none, parse("warn_window = \"7d\"\n"), []string{"warn_window"}},
		{parse("warn_window = \"10%\"\n"), none, nil},
	}
	for i, tt := range tests {
		if got := restartOnly(tt.a, tt.b); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%d: got %q, want %q", i, got, tt.want)
		}
	}
}
