package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/renewal"
)

// tenPercent is the default warning window.
var tenPercent = renewal.WarnWindow{Fraction: 0.10}

func TestNotify(t *testing.T) {
	f := newFixture(t)
	hook := f.write(t, "notify-hook", "#!/bin/sh\n", 0o755)
	f.write(t, "webhook.secret", "s3cret\n", 0o600)
	c := f.mustParse(t, `notify_command = ["./notify-hook", "--mail", "ops@example.com"]
notify_webhook = "https://hooks.example.com/tls?team=ops"
notify_webhook_secret_file = "webhook.secret"
notify_timeout = "45s"
`)
	want := &Notify{
		Command:           []string{hook, "--mail", "ops@example.com"},
		Webhook:           "https://hooks.example.com/tls?team=ops",
		WebhookSecretFile: f.dir + "/webhook.secret",
		Timeout:           45 * time.Second,
	}
	if !reflect.DeepEqual(c.Notify, want) {
		t.Errorf("got %+v, want %+v", c.Notify, want)
	}

	// Defaults; a program named alone is looked up in PATH; http to
	// loopback is allowed.
	for _, tt := range []struct {
		config string
		want   *Notify
	}{
		{``, nil},
		{`notify_command = "true"`, &Notify{Command: []string{"true"}, Timeout: 30 * time.Second}},
		{`notify_command = ["sh", "-c", "echo $1"]`, &Notify{Command: []string{"sh", "-c", "echo $1"}, Timeout: 30 * time.Second}},
		{`notify_command = ["` + hook + `"]`, &Notify{Command: []string{hook}, Timeout: 30 * time.Second}},
		{`notify_webhook = "http://127.0.0.1:9000/hook"`, &Notify{Webhook: "http://127.0.0.1:9000/hook", Timeout: 30 * time.Second}},
		{`notify_webhook = "http://localhost/hook"`, &Notify{Webhook: "http://localhost/hook", Timeout: 30 * time.Second}},
		{`notify_webhook = "http://[::1]:80/"`, &Notify{Webhook: "http://[::1]:80/", Timeout: 30 * time.Second}},
	} {
		if c := f.mustParse(t, tt.config); !reflect.DeepEqual(c.Notify, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.config, c.Notify, tt.want)
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	f := newFixture(t)
	f.write(t, "open.secret", "s3cret\n", 0o640)
	f.write(t, "others.secret", "s3cret\n", 0o604)
	f.write(t, "plain", "not a program\n", 0o644)
	tests := []struct {
		config string
		want   string
	}{
		{"email = \"a@example.com\"\nnotify_webhook = \"https://h.example/\"\nnotify_webhook_secret_file = \"open.secret\"",
			"tlspilot.toml:3: notify_webhook_secret_file: $DIR/open.secret is readable by group or others (want mode 0600 or 0400)"},
		{"notify_webhook = \"https://h.example/\"\nnotify_webhook_secret_file = \"others.secret\"",
			"tlspilot.toml:2: notify_webhook_secret_file: $DIR/others.secret is readable by group or others (want mode 0600 or 0400)"},
		{"notify_webhook = \"https://h.example/\"\nnotify_webhook_secret_file = \"missing.secret\"",
			"tlspilot.toml:2: notify_webhook_secret_file: $DIR/missing.secret does not exist"},
		{`notify_webhook_secret_file = "tsig.secret"`,
			"tlspilot.toml:1: notify_webhook_secret_file: not used without notify_webhook"},
		{"\n\nnotify_timeout = \"1m\"", "tlspilot.toml:3: notify_timeout: not used without notify_command or notify_webhook"},
		{"notify_command = \"true\"\nnotify_timeout = \"30\"", `tlspilot.toml:2: notify_timeout: "30": want a positive duration such as "60s" or "5m"`},
		{"notify_command = \"true\"\nnotify_timeout = \"-1s\"", `tlspilot.toml:2: notify_timeout: "-1s": want a positive duration`},
		{`notify_command = []`, `tlspilot.toml:1: notify_command: want the program and its arguments, such as ["/usr/local/bin/tls-hook", "--mail"]`},
		{`notify_command = [""]`, "tlspilot.toml:1: notify_command[1]: empty program name"},
		{"notify_command = [\n  \"true\",\n  3,\n]", "tlspilot.toml:3: notify_command[2]: want a string, not an integer"},
		{`notify_command = 7`, "tlspilot.toml:1: notify_command: want a string or a list of strings, not an integer"},
		{`notify_command = "no-such-program-tlspilot"`, `tlspilot.toml:1: notify_command: "no-such-program-tlspilot" is not found in PATH`},
		{`notify_command = "/usr/bin/mail -s expiring ops@example.com"`,
			"tlspilot.toml:1: notify_command: /usr/bin/mail -s expiring ops@example.com does not exist (it is run without a shell: give the program and each argument as elements of a list)"},
		{`notify_command = ["hooks/missing"]`, "tlspilot.toml:1: notify_command[1]: $DIR/hooks/missing does not exist"},
		{`notify_command = ["./plain"]`, "tlspilot.toml:1: notify_command[1]: $DIR/plain is not an executable file"},
		{`notify_command = ["www"]`, `notify_command[1]: "www" is not found in PATH`},
		{`notify_command = ["./www"]`, "tlspilot.toml:1: notify_command[1]: $DIR/www is not an executable file"},
		{`notify_webhook = "hooks.example.com/tls"`, `tlspilot.toml:1: notify_webhook: want an https URL, such as "https://hooks.example.com/tls"`},
		{`notify_webhook = "ftp://hooks.example.com/"`, `notify_webhook: want an https URL`},
		{`notify_webhook = "http://hooks.slack.com/services/T0/B0/s3cr3t"`, `tlspilot.toml:1: notify_webhook: "http://hooks.slack.com/services/…": http only to a loopback address; use https`},
		{`notify_webhook = "https://hooks.example.com:99999/services/T0/B0/s3cr3t"`, `notify_webhook: "https://hooks.example.com:99999/services/…": port 99999 is not from 1 to 65535`},
		{`notify_webhook = "http://hooks.example.com/tls"`, `tlspilot.toml:1: notify_webhook: "http://hooks.example.com/tls": http only to a loopback address; use https`},
		{`notify_webhook = 1`, "tlspilot.toml:1: notify_webhook: want a string, not an integer"},
		{`notify_comand = "true"`, `tlspilot.toml:1: notify_comand: unknown key (did you mean "notify_command"?)`},
	}
	for _, tt := range tests {
		_, err := f.parse(t, tt.config)
		want := strings.ReplaceAll(tt.want, "$DIR", f.dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", tt.config, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the webhook's secret is quoted: %v", tt.config, err)
		}
	}
}

func TestWarnWindow(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		in   string
		want renewal.WarnWindow
	}{
		{"10%", renewal.WarnWindow{Fraction: 0.10}},
		{"33.5%", renewal.WarnWindow{Fraction: 0.335}},
		{"7d", renewal.WarnWindow{Duration: 7 * 24 * time.Hour}},
		{"1.5d", renewal.WarnWindow{Duration: 36 * time.Hour}},
		{"72h", renewal.WarnWindow{Duration: 72 * time.Hour}},
		{"90m", renewal.WarnWindow{Duration: 90 * time.Minute}},
		{" 14d ", renewal.WarnWindow{Duration: 14 * 24 * time.Hour}},
	}
	for _, tt := range tests {
		c := f.mustParse(t, "warn_window = \""+tt.in+"\"\n")
		if c.WarnWindow != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.in, c.WarnWindow, tt.want)
		}
	}
	if c := f.mustParse(t, ""); c.WarnWindow != tenPercent || c.WarnWindow.String() != "10%" {
		t.Errorf("default: %+v", c.WarnWindow)
	}
	bad := []struct{ in, want string }{
		{`"0%"`, `warning window "0%": want a percentage between 0% and 100% of the lifetime, such as "10%"`},
		{`"100%"`, `want a percentage between 0% and 100%`},
		{`"ten%"`, `want a percentage between 0% and 100%`},
		{`"0d"`, `warning window "0d": want a positive number of days, such as "7d"`},
		{`"-3d"`, `want a positive number of days`},
		{`"7 days"`, `warning window "7 days": want a percentage ("10%"), days ("7d") or a duration ("72h")`},
		{`"0s"`, `want a percentage ("10%"), days ("7d") or a duration ("72h")`},
		{`""`, `want a percentage ("10%"), days ("7d") or a duration ("72h")`},
		{`7`, `want a string, not an integer`},
	}
	for _, tt := range bad {
		_, err := f.parse(t, "email = \"a@example.com\"\nwarn_window = "+tt.in+"\n")
		if err == nil || !strings.Contains(err.Error(), "tlspilot.toml:2: warn_window: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %s", tt.in, err, tt.want)
		}
	}
}

// TestNotifyCommandNotExecutableByMode: the executable check looks at the
// mode, since root may run anything.
func TestNotifyCommandNotExecutableByMode(t *testing.T) {
	f := newFixture(t)
	p := f.write(t, "hook", "#!/bin/sh\n", 0o755)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.parse(t, `notify_command = "hook"`); err == nil {
		t.Error("a bare name that is a file in the config's directory was accepted: it is looked up in PATH")
	}
	if _, err := f.parse(t, `notify_command = "./hook"`); err == nil || !strings.Contains(err.Error(), "is not an executable file") {
		t.Errorf("got %v", err)
	}
}
