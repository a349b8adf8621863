package config

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/notify"
	"github.com/tlspilot/tlspilot/internal/renewal"
)

// DefaultNotifyTimeout bounds each run of a notification hook when
// "notify_timeout" is not written.
const DefaultNotifyTimeout = 30 * time.Second

// Notify holds the notify_* keys: hooks told about certificate events
// (see package internal/notify). At least one of Command and Webhook is
// set.
type Notify struct {
	// Command is the program and its first arguments ("notify_command":
	// a list, or a string naming the program alone), run without a
	// shell. A program path containing a slash is resolved against the
	// config's directory and is an executable file; a bare name was found
	// in PATH when the config was loaded.
	Command []string
	// Webhook is the URL events are POSTed to as JSON ("notify_webhook"):
	// https, or http to a loopback address.
	Webhook string
	// WebhookSecretFile is an absolute path to the key that signs webhook
	// bodies ("notify_webhook_secret_file"), readable by its owner only.
	// Empty: unsigned.
	WebhookSecretFile string
	// Timeout bounds each run of a hook ("notify_timeout"). Default
	// DefaultNotifyTimeout.
	Timeout time.Duration
}

// notify decodes the notify_* keys into c.Notify, left nil when neither
// a command nor a webhook is given; keys that would then be ignored are
// refused.
func (d *decoder) notify(t *table, c *Config) {
	n := &Notify{Timeout: DefaultNotifyTimeout}
	if paths, ok := t.strings("notify_command", &n.Command); ok {
		d.notifyCommand(t.key("notify_command"), paths, n.Command)
	}
	if t.str("notify_webhook", &n.Webhook) {
		d.webhookURL(t.key("notify_webhook"), n.Webhook)
	}
	if t.str("notify_webhook_secret_file", &n.WebhookSecretFile) {
		n.WebhookSecretFile = d.webhookSecretFile(t.key("notify_webhook_secret_file"), n.WebhookSecretFile)
		if n.Webhook == "" {
			d.errorf(t.key("notify_webhook_secret_file"), "not used without notify_webhook")
		}
	}
	t.duration("notify_timeout", &n.Timeout)
	if len(n.Command) > 0 || n.Webhook != "" {
		c.Notify = n
	} else if _, ok := t.m["notify_timeout"]; ok {
		d.errorf(t.key("notify_timeout"), "not used without notify_command or notify_webhook")
	}
}

// notifyCommand checks the program of a notify_command and resolves a
// relative path to it.
func (d *decoder) notifyCommand(path string, paths, argv []string) {
	if len(argv) == 0 || len(paths) == 0 {
		d.errorf(path, "want the program and its arguments, such as [\"/usr/local/bin/tls-hook\", \"--mail\"]")
		return
	}
	prog, at := argv[0], paths[0]
	if prog == "" {
		d.errorf(at, "empty program name")
		return
	}
	hint := ""
	if strings.ContainsAny(prog, " \t") {
		hint = " (it is run without a shell: give the program and each argument as elements of a list)"
	}
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			d.errorf(at, "%q is not found in PATH%s", prog, hint)
		}
		return
	}
	argv[0] = d.resolve(prog)
	fi, err := os.Stat(argv[0])
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(at, "%s does not exist%s", argv[0], hint)
	case err != nil:
		d.errorf(at, "%w", err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		d.errorf(at, "%s is not an executable file", argv[0])
	}
}

// webhookSecretFile checks the webhook secret's file as secretFile does,
// and as serve reads it (notify.ReadSecret): not empty once trimmed. An
// empty file passed check and stopped serve at start. A file the user
// running check may not read is left to serve, which reads it as root.
func (d *decoder) webhookSecretFile(path, p string) string {
	before := len(d.errs)
	p = d.secretFile(path, p)
	if len(d.errs) > before {
		return p
	}
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) == 0 {
		d.errorf(path, "%s is empty: want the key that signs the webhook bodies", p)
	}
	return p
}

// webhookURL checks a notify_webhook URL: https, or http to loopback
// only, since the body would cross the network in clear.
// The URL is never quoted whole (notify.ShownURL): chat services put the
// webhook's secret in it.
func (d *decoder) webhookURL(path, v string) {
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		d.errorf(path, "want an https URL, such as \"https://hooks.example.com/tls\"")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		d.errorf(path, "%q: http only to a loopback address; use https", notify.ShownURL(u))
	default:
		d.urlPort(path, notify.ShownURL(u), u)
	}
}

func loopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return strings.EqualFold(h, "localhost") || (ip != nil && ip.IsLoopback())
}

// warnWindow decodes "warn_window" into c.WarnWindow: by default 10% of
// the lifetime (renewal.DefaultWarnFraction), as mod_md's MDWarnWindow.
func (d *decoder) warnWindow(t *table, c *Config) {
	c.WarnWindow = d.warnWindowKey(t)
}

// warnWindowKey reads the table's warn_window, 10% of the lifetime when
// absent.
func (d *decoder) warnWindowKey(t *table) renewal.WarnWindow {
	def := renewal.WarnWindow{Fraction: renewal.DefaultWarnFraction}
	var s string
	if !t.str("warn_window", &s) {
		return def
	}
	w, err := renewal.ParseWarnWindow(s)
	if err != nil {
		d.errorf(t.key("warn_window"), "%w", err)
		return def
	}
	return w
}
