package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/notify"
)

// hooks is serve's notifier (the notify_* keys) and how long shutdown
// waits for it. The zero value, without notify keys, does nothing.
type hooks struct {
	n    *notify.Notifier
	wait time.Duration
}

// startHooks starts the notifier of the notify_* keys. serve calls it
// before dropping privileges, so the webhook secret may be readable by
// root only; the hooks themselves run as the user serve runs as.
func startHooks(cfg *config.Config, log *slog.Logger) (*hooks, error) {
	nc := cfg.Notify
	if nc == nil {
		return &hooks{}, nil
	}
	opts := notify.Options{Command: nc.Command, Webhook: nc.Webhook, Timeout: nc.Timeout, Logger: log.With("component", "notify"),
		HideEnv: secretEnv(cfg)}
	if nc.WebhookSecretFile != "" {
		secret, err := notify.ReadSecret(nc.WebhookSecretFile)
		if err != nil {
			return nil, cfg.Errorf("notify_webhook_secret_file", "%v", err)
		}
		opts.WebhookSecret = secret
	}
	n, err := notify.New(opts)
	if err != nil {
		return nil, cfg.Errorf("notify_command", "%v", err)
	}
	return &hooks{n: n, wait: nc.Timeout}, nil
}

// configure has the Manager's events sent to the hooks, after any
// OnEvent already set (Notify only queues, so it is cheap to call).
func (h *hooks) configure(mc *tlspilot.Config) {
	if h.n == nil {
		return
	}
	prev, notify := mc.OnEvent, h.n.Notify
	if prev == nil {
		mc.OnEvent = notify
		return
	}
	mc.OnEvent = func(ev tlspilot.Event) { prev(ev); notify(ev) }
}

// close waits for the hooks still queued or running at shutdown, up to
// notify_timeout: a hook that runs gets that long anyway, and what is
// still queued then is dropped (each logged) rather than hold the exit.
func (h *hooks) close(log *slog.Logger) {
	if h.n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.wait)
	defer cancel()
	if err := h.n.Close(ctx); err != nil {
		log.Warn("notifications cut short at shutdown", "error", err)
	}
}

// changedNotifyKeys names the notify_* keys that differ between a and b
// (nil: none written), for the warning that they change only on restart.
func changedNotifyKeys(a, b *config.Notify) []string {
	var x, y config.Notify
	if a != nil {
		x = *a
	}
	if b != nil {
		y = *b
	}
	var out []string
	if !slices.Equal(x.Command, y.Command) {
		out = append(out, "notify_command")
	}
	if x.Webhook != y.Webhook {
		out = append(out, "notify_webhook")
	}
	if x.WebhookSecretFile != y.WebhookSecretFile {
		out = append(out, "notify_webhook_secret_file")
	}
	if x.Timeout != y.Timeout && a != nil && b != nil {
		out = append(out, "notify_timeout")
	}
	return out
}
