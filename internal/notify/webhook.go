package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// body, when a secret is configured.
	SignatureHeader = "X-Tlspilot-Signature"
	// EventHeader repeats the body's "event".
	EventHeader = "X-Tlspilot-Event"
)

// webhookAttempts bounds the POSTs of one notification.
const webhookAttempts = 3

// webhook POSTs each event as JSON.
type webhook struct {
	url     string
	shown   string   // url with any password hidden, for logs and errors
	secrets []string // parts of url that shown elides (secretsOf)
	secret  []byte   // nil: unsigned
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
}

func (w *webhook) kind() string { return "webhook" }

// retryable marks a failure worth another attempt.
type retryable struct{ error }

func (e retryable) Unwrap() error { return e.error }

// deliver POSTs p, trying again after transient failures while the
// timeout lasts, and logs the outcome.
func (w *webhook) deliver(ctx context.Context, p Payload) {
	run, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Payload has only plain fields
		w.log.Error("notify webhook: encode", "event", p.Event, "cert", p.CertID, "error", err)
		return
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err = w.post(run, p.Event, body)
		if err == nil || attempt == webhookAttempts || !errors.As(err, new(retryable)) || !sleep(run, time.Duration(attempt)*time.Second) {
			w.report(ctx, p, err, attempt, time.Since(start))
			return
		}
	}
}

func (w *webhook) report(ctx context.Context, p Payload, err error, attempts int, d time.Duration) {
	attrs := []any{"hook", "webhook", "event", p.Event, "cert", p.CertID, "url", w.shown,
		"attempt", attempts, "duration", d.Round(time.Millisecond)}
	switch {
	case err == nil:
		w.log.Debug("notify webhook delivered", attrs...)
	case ctx.Err() != nil:
		w.log.Warn("notify webhook abandoned at shutdown", append(attrs, "error", w.hideSecrets(err.Error()))...)
	default:
		w.log.Error("notify webhook failed", append(attrs, "error", w.hideSecrets(err.Error()))...)
	}
}

// secretsOf returns the parts of u that ShownURL elides, which a
// receiver's answer may quote back ("Cannot POST /services/T…/B…/SECRET"):
// the path after its first segment, each of its segments, the query and
// each of its values, and the password, also as the base64 of the Basic
// Authorization header net/http sends; the longest first, those shorter
// than 8 bytes left out (they hide no secret, and would blot out words).
func secretsOf(u *url.URL) []string {
	var out []string
	for _, p := range []string{u.EscapedPath(), u.Path} {
		if _, rest, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/"); ok {
			out = append(out, rest)
			out = append(out, strings.Split(rest, "/")...)
		}
	}
	out = append(out, u.RawQuery)
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	if p, ok := u.User.Password(); ok {
		// net/http sends them as an Authorization header, which a
		// receiver that refuses them may quote back.
		out = append(out, p, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p)))
	}
	out = slices.DeleteFunc(out, func(s string) bool { return len(s) < 8 })
	slices.SortFunc(out, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// hideSecrets returns s with each of the webhook's secrets as "…".
func (w *webhook) hideSecrets(s string) string { return w.hideSecretsIn(s, len(s)) }

// hideSecretsIn returns the first n bytes of s with each run of bytes
// that belong to one of the webhook's secrets as one "…". The secrets
// are looked for in the whole of s, before it is cut: one the cut goes
// through is hidden all the same, and so are secrets that overlap (one
// replaced first left the end of the other in sight).
func (w *webhook) hideSecretsIn(s string, n int) string {
	hidden := make([]bool, len(s))
	for _, sec := range w.secrets {
		for from := 0; ; {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			i += from
			for k := i; k < i+len(sec); k++ {
				hidden[k] = true
			}
			from = i + 1
		}
	}
	var b strings.Builder
	for i := 0; i < len(s) && i < n; i++ {
		switch {
		case !hidden[i]:
			b.WriteByte(s[i])
		case i == 0 || !hidden[i-1]:
			b.WriteString("…")
		}
	}
	return b.String()
}

// longestSecret is the length of the webhook's longest secret.
func (w *webhook) longestSecret() int {
	if len(w.secrets) == 0 {
		return 0
	}
	return len(w.secrets[0])
}

// post makes one attempt. A connection error, 3xx (never followed: see
// noRedirects), 429 or 5xx is retryable.
func (w *webhook) post(ctx context.Context, event string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", w.hideURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tlspilot-notify")
	req.Header.Set(EventHeader, event)
	if w.secret != nil {
		req.Header.Set(SignatureHeader, Sign(w.secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return retryable{fmt.Errorf("webhook: %w", w.hideURL(err))}
	}
	defer resp.Body.Close()
	// Read past maxAnswer so that a secret the cut goes through is
	// found whole, and hidden.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, int64(maxAnswer+w.longestSecret())))
	answer := w.hideSecretsIn(string(raw), maxAnswer)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	status := clip(w.hideSecrets(resp.Status))
	if resp.StatusCode/100 == 3 {
		return retryable{fmt.Errorf("webhook: %s answered %s, redirect to %s not followed: %q",
			w.shown, status, w.shownLocation(resp.Header.Get("Location")), answer)}
	}
	err = fmt.Errorf("webhook: %s answered %s: %q", w.shown, status, answer)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return retryable{err}
	}
	return err
}

// maxAnswer bounds each part of a receiver's answer that is logged: the
// start of its body, its status line, its Location. A receiver may make
// a header as long as net/http takes one, megabytes.
const maxAnswer = 512

// clip returns s cut to maxAnswer bytes, with a note of what was cut.
func clip(s string) string {
	if len(s) <= maxAnswer {
		return s
	}
	return fmt.Sprintf("%s… (%d more bytes)", strings.ToValidUTF8(s[:maxAnswer], ""), len(s)-maxAnswer)
}

// shownLocation is a 3xx's Location as logs and errors show it: as
// ShownURL shows a webhook's URL, since a receiver often redirects to
// the webhook's own URL changed a little, secret included. The change
// most often made, a trailing slash added, is said. One that is not a
// URL is quoted, clipped.
func (w *webhook) shownLocation(loc string) string {
	l, err := url.Parse(loc)
	if err != nil {
		return fmt.Sprintf("%q", clip(w.hideSecrets(loc)))
	}
	base, _ := url.Parse(w.url) // parsed by New
	to := base.ResolveReference(l)
	shown := clip(w.hideSecrets(ShownURL(to)))
	if to.String() == base.String()+"/" {
		shown += " (the webhook's URL with a trailing slash)"
	}
	return shown
}

// hideURL returns err with the URL that net/http and net/url quote in
// their errors ("Post \"https://hooks.slack.com/services/T…/B…/SECRET\":
// dial tcp …") shown as ShownURL shows it: url.Error hides a password
// only, and chat services put the webhook's secret in its path or query.
// The rest is clipped (clippedError): net/http quotes what the receiver
// sent when it is malformed ("malformed MIME header: missing colon: …"),
// as long as a header may be.
func (w *webhook) hideURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return w.clipped(err)
	}
	return &url.Error{Op: ue.Op, URL: w.shown, Err: w.clipped(ue.Err)}
}

// clipped returns err, or when its text is longer than maxAnswer, err
// with its text clipped, the webhook's secrets hidden before the cut
// (one it went through would no longer be recognised).
func (w *webhook) clipped(err error) error {
	if len(err.Error()) <= maxAnswer {
		return err
	}
	return clippedError{err: err, text: clip(w.hideSecrets(err.Error()))}
}

// clippedError is an error whose text is clipped; errors.Is and As see
// the error it holds.
type clippedError struct {
	err  error
	text string
}

func (e clippedError) Error() string { return e.text }
func (e clippedError) Unwrap() error { return e.err }

// sleep waits d, or returns false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Sign returns the SignatureHeader value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ReadSecret reads a webhook secret: the content of the file at path
// without surrounding whitespace. Like ssh with private keys (and
// dns01.ReadSecret with TSIG secrets), it refuses a file that group or
// others may read, and an empty one, with an error naming the path.
func ReadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return nil, fmt.Errorf("secret file %s is readable by group or others (mode %04o; want 0600 or 0400)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}
