// Package notify tells the outside world what happened to certificates,
// after mod_md's MDNotifyCmd and MDMessageCmd: a command run for every
// event, a webhook POSTed for every event, or both. It never delays
// issuance or serving: Notify only queues, and hooks run in the
// background, a bounded number at a time, each killed when it overruns
// its timeout.
//
// # Events
//
// The events notified are the tlspilot.EventType values "obtained",
// "renewed", "renew-failed", "expiring", "expired", "revoked", and, from
// `tlspilot certs`, "deployed" and "deploy-failed";
// "loaded" (a certificate stored by another process taken into service)
// is not notified.
//
// # Command
//
// Options.Command ["/path/to/prog", "arg", …] runs, directly and without
// a shell, as
//
//	/path/to/prog arg… EVENT CERT_ID NAME…
//
// with stdin from /dev/null, in its own process group, and with the
// environment of tlspilot (less any TLSPILOT_ variable) plus:
//
//	TLSPILOT_EVENT      the event, e.g. "renew-failed"
//	TLSPILOT_CERT_ID    the certificate's id, e.g. "example.com-ecdsa-p256"
//	TLSPILOT_NAMES      its names, separated by spaces
//	TLSPILOT_KEY_TYPE   its key type, e.g. "ecdsa-p256"
//	TLSPILOT_NOT_AFTER  expiry of the certificate in service, RFC 3339 (UTC); empty if none
//	TLSPILOT_ERROR      the error, for renew-failed and deploy-failed; the last renewal error, for expiring and expired; else empty
//	TLSPILOT_ATTEMPT    consecutive failures so far (renew-failed, deploy-failed); else 0
//	TLSPILOT_RETRY_AT   next attempt, RFC 3339 (renew-failed, deploy-failed); else empty
//	TLSPILOT_TIME       when the event happened, RFC 3339 (UTC)
//
// Every variable is always set, so a script may use "set -u". A NUL
// byte in an argument or variable, which exec refuses, is passed as
// U+FFFD, and one longer than 32 KiB is cut with a note of what was cut,
// so that the command runs whatever a CA or a reload command said.
// A command that exits with a status other than 0 is logged at ERROR
// with its exit code and output (the first 4 KiB of stdout and stderr
// together). One that runs past the timeout is killed with SIGKILL, with every process
// still in its process group, and logged the same way. When the command
// exits, whatever it left running in its process group is killed too, so
// no hook outlives its run.
//
// # Webhook
//
// Options.Webhook receives each event as a POST with Content-Type
// application/json and this body, whose field names are stable (new
// fields may be added):
//
//	{
//	  "event": "renew-failed",
//	  "cert_id": "example.com-ecdsa-p256",
//	  "names": ["example.com", "www.example.com"],
//	  "key_type": "ecdsa-p256",
//	  "not_after": "2026-03-01T12:00:00Z",
//	  "error": "obtain example.com: …",
//	  "attempt": 3,
//	  "retry_at": "2026-02-20T08:15:00Z",
//	  "time": "2026-02-20T08:00:00Z"
//	}
//
// not_after and retry_at are null when unknown, error is "" when there
// is none. attempt and retry_at are set for renew-failed and
// deploy-failed only: other events, expiring and expired included, carry
// 0 and null. Times are RFC 3339 in UTC, to the second. The header X-Tlspilot-Event repeats
// the event.
//
// With Options.WebhookSecret, the header
//
//	X-Tlspilot-Signature: sha256=<hex HMAC-SHA256 of the body>
//
// signs the exact bytes of the body, as GitHub's X-Hub-Signature-256
// does, so existing verifiers work. There is no separate timestamp
// header: the signed body carries "time", which a receiver can check to
// refuse replays. ReadSecret reads the key from a file (its content
// without surrounding whitespace) and refuses one that group or others
// may read.
//
// Any 2xx answer is success. Redirects are never followed. A connection
// error, a 3xx, a 429 or a 5xx is tried again after 1 s, then 2 s (three
// attempts at most, all within the timeout); any other answer, or the
// last failure, is logged at ERROR with the status (and a 3xx's
// Location, shown as ShownURL shows the webhook's URL) and the start of
// the answer's body. A password in the URL is hidden in logs and
// errors, and what ShownURL elides of the URL is elided also where the
// answer quotes it.
//
// # Queue
//
// At most Options.Workers hooks run at once (default 4); up to
// Options.Queue more wait (default 256). A hook is told of one
// certificate's events in the order they happened, each once the one
// before has finished (its retries included). When the queue is full,
// Notify drops the notification and logs it at ERROR ("notification
// dropped: queue full") with the event and certificate, rather than
// block the Manager. Close stops taking notifications, lets those queued and
// running finish until its context ends, then kills what still runs.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot"
)

// Defaults of Options.
const (
	DefaultTimeout = 30 * time.Second
	DefaultWorkers = 4
	DefaultQueue   = 256
)

// Options configures a Notifier. At least one of Command and Webhook is
// needed for anything to happen.
type Options struct {
	// Command is the program to run for each event and its first
	// arguments; the program is a path, or a name looked up in PATH.
	Command []string
	// Webhook is an http or https URL that each event is POSTed to.
	Webhook string
	// WebhookSecret, if set, is the key that signs webhook bodies
	// (ReadSecret reads it from a file).
	WebhookSecret []byte
	// Timeout bounds each run of the command and each webhook delivery
	// (all its attempts). Default DefaultTimeout.
	Timeout time.Duration
	// Workers bounds the hooks running at once. Default DefaultWorkers.
	Workers int
	// Queue bounds the hooks waiting to run. Default DefaultQueue.
	Queue int
	// Client carries webhook requests. Default: a client with the
	// system's roots and no cookies. Whichever is used, redirects are
	// never followed (New uses a copy with its own CheckRedirect).
	Client *http.Client
	// Logger receives every hook's outcome; nil discards them.
	Logger *slog.Logger
	// HideEnv names environment variables the command does not inherit:
	// secrets tlspilot reads from its environment (tsig_secret_env),
	// which a hook has no use for.
	HideEnv []string
}

// Notifier runs hooks for certificate events. Its methods are safe for
// concurrent use; a nil *Notifier does nothing.
type Notifier struct {
	hooks []hook
	log   *slog.Logger

	ctx    context.Context // ended by Close when its context ends
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards closed, lines, waiting and sending on queue
	closed  bool
	queue   chan job
	lines   map[lineKey]*line // see order.go
	waiting int               // notifications queued or parked, not started
}

// hook delivers one notification and logs how it went. It must return
// soon after ctx ends.
type hook interface {
	deliver(ctx context.Context, p Payload)
	kind() string // "command" or "webhook", for logs
}

type job struct {
	h   hook
	p   Payload
	seq uint64 // in its line (order.go)
}

// New checks opts and starts the workers. The error names the option at
// fault.
func New(opts Options) (*Notifier, error) {
	opts = withDefaults(opts)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{log: log, queue: make(chan job, opts.Queue), lines: map[lineKey]*line{}}
	if len(opts.Command) > 0 {
		if opts.Command[0] == "" {
			return nil, errors.New("notify: command: empty program name")
		}
		n.hooks = append(n.hooks, &command{argv: opts.Command, timeout: opts.Timeout, log: log, hide: opts.HideEnv})
	}
	if opts.Webhook != "" {
		w, err := newWebhook(opts, log)
		if err != nil {
			return nil, err
		}
		n.hooks = append(n.hooks, w)
	} else if opts.WebhookSecret != nil {
		return nil, errors.New("notify: webhook secret given without a webhook")
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		n.wg.Go(n.work)
	}
	return n, nil
}

func withDefaults(opts Options) Options {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	return opts
}

func newWebhook(opts Options, log *slog.Logger) (*webhook, error) {
	u, err := url.Parse(opts.Webhook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("notify: webhook: want an http or https URL")
	}
	if opts.WebhookSecret != nil && len(opts.WebhookSecret) == 0 {
		return nil, errors.New("notify: webhook secret is empty")
	}
	return &webhook{url: opts.Webhook, shown: ShownURL(u), secrets: secretsOf(u), secret: opts.WebhookSecret, client: noRedirects(opts.Client),
		timeout: opts.Timeout, log: log}, nil
}

// ShownURL is webhook URL u as logs and errors show it: scheme, user
// (password as "xxxxx", as url.URL.Redacted), host and the first segment
// of the path, the rest and the query elided as "…"
// ("https://hooks.slack.com/services/…"): chat services put the webhook's
// secret in its path (Slack, Discord, Teams) or its query.
func ShownURL(u *url.URL) string {
	shown := u.Scheme + "://"
	if u.User != nil {
		shown += u.User.Username()
		if _, ok := u.User.Password(); ok {
			shown += ":xxxxx"
		}
		shown += "@"
	}
	shown += u.Host
	if p := strings.TrimPrefix(u.EscapedPath(), "/"); p != "" || u.RawQuery != "" {
		first, rest, _ := strings.Cut(p, "/")
		shown += "/" + first
		if rest != "" || u.RawQuery != "" {
			shown += "/…"
		}
	}
	return shown
}

// noRedirects returns a copy of c (or of a zero Client when c is nil)
// that never follows a redirect: a 3xx is handed back as the answer.
// Following one would re-send the signed body to wherever the receiver
// points (a 307 or 308), plain http included, or turn the POST into a
// GET without a body that counts as delivered (a 302).
func noRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// Notify queues ev for every hook and returns at once. Events that are
// not notified (see the package doc) are ignored. It may be used as
// tlspilot.Config.OnEvent.
func (n *Notifier) Notify(ev tlspilot.Event) {
	if n == nil || !notified(ev.Type) {
		return
	}
	p := payloadOf(ev)
	for _, h := range n.hooks {
		n.enqueue(job{h: h, p: p})
	}
}

func (n *Notifier) enqueue(j job) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.log.Warn("notification dropped: notifier closed", "hook", j.h.kind(), "event", j.p.Event, "cert", j.p.CertID)
		return
	}
	if !n.queueLocked(j) {
		n.log.Error("notification dropped: queue full", "hook", j.h.kind(), "event", j.p.Event, "cert", j.p.CertID,
			"queue", cap(n.queue))
	}
}

// work delivers notifications taken from the queue, and after each the
// next of its line if it was parked meanwhile (order.go).
func (n *Notifier) work() {
	for j := range n.queue {
		for ok := n.take(j); ok; j, ok = n.finished(j) {
			n.deliver(j)
		}
	}
}

func (n *Notifier) deliver(j job) {
	if n.ctx.Err() != nil {
		n.log.Warn("notification dropped at shutdown", "hook", j.h.kind(), "event", j.p.Event, "cert", j.p.CertID)
		return
	}
	j.h.deliver(n.ctx, j.p)
}

// Close stops taking notifications and waits for those queued and
// running. When ctx ends first, hooks still running are killed, those
// still queued are dropped (each logged), and Close returns once the
// workers have stopped, with ctx's error. Close may be called more
// than once.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return fmt.Errorf("notify: close: %w", context.Cause(ctx))
	}
}
