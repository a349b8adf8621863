package notify

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tlspilot/tlspilot"
)

// Payload is what a hook is told about one event: the webhook's JSON
// body, and the command's arguments and environment. The JSON names are
// a stable contract (see the package doc).
type Payload struct {
	// Event is the tlspilot.EventType, e.g. "renewed".
	Event string `json:"event"`
	// CertID identifies the certificate, as in `tlspilot status`.
	CertID string `json:"cert_id"`
	// Names are the certificate's names, the primary first; never nil.
	Names []string `json:"names"`
	// KeyType is the certificate's key type, e.g. "ecdsa-p256".
	KeyType string `json:"key_type"`
	// NotAfter is when the certificate in service expires; nil if none.
	NotAfter *time.Time `json:"not_after"`
	// Error says why, for renew-failed and deploy-failed, and gives the
	// last renewal error for expiring and expired; else "".
	Error string `json:"error"`
	// Attempt counts consecutive failures, for renew-failed and
	// deploy-failed; else 0.
	Attempt int `json:"attempt"`
	// RetryAt is when the next attempt is due, for renew-failed and
	// deploy-failed; else nil.
	RetryAt *time.Time `json:"retry_at"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
}

// notified reports whether events of type t go to hooks.
func notified(t tlspilot.EventType) bool {
	switch t {
	case tlspilot.EventObtained, tlspilot.EventRenewed, tlspilot.EventFailed,
		tlspilot.EventExpiring, tlspilot.EventExpired, tlspilot.EventRevoked,
		tlspilot.EventDeployed, tlspilot.EventDeployFailed:
		return true
	}
	return false
}

// payloadOf converts ev, with times in UTC to the second.
func payloadOf(ev tlspilot.Event) Payload {
	p := Payload{
		Event:    string(ev.Type),
		CertID:   ev.CertID,
		Names:    append([]string{}, ev.Names...),
		KeyType:  string(ev.KeyType),
		NotAfter: timePtr(ev.NotAfter),
		Time:     utc(ev.Time),
	}
	if retried(ev.Type) {
		p.Attempt, p.RetryAt = ev.Attempt, timePtr(ev.RetryAt)
	}
	if ev.Err != nil {
		p.Error = ev.Err.Error()
	}
	return p
}

// retried reports whether events of type t are failures that will be
// tried again, and so carry an attempt count and a next attempt. Other
// events get 0 and nil, as documented, whatever the event carries: the
// Manager's "expiring" and "expired" carry its renewal state's count and
// next attempt, which would tell a receiver that a renewal failure is
// being retried at a time that may already be past.
func retried(t tlspilot.EventType) bool {
	return t == tlspilot.EventFailed || t == tlspilot.EventDeployFailed
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := utc(t)
	return &u
}

// args returns the arguments added after the command's own:
// EVENT CERT_ID NAME…, each made fit for exec (execValue).
func (p Payload) args() []string {
	args := append([]string{p.Event, p.CertID}, p.Names...)
	for i, a := range args {
		args[i] = execValue(a)
	}
	return args
}

// maxExecValue bounds an argument or variable passed to the command:
// Linux refuses one longer than 128 KiB (MAX_ARG_STRLEN), and the whole
// of them longer than a few MiB, with "argument list too long".
const maxExecValue = 32 << 10

// execValue returns s as the kernel takes it in an argument or an
// environment variable: each NUL byte, which would end it (exec refuses
// it), as U+FFFD, and cut to maxExecValue bytes with a note of what was
// cut. Errors come from outside (a CA's problem detail, a reload
// command's output): a value exec refuses would keep the command from
// running at all.
func execValue(s string) string {
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= maxExecValue {
		return s
	}
	// Back to the start of a character cut in two: at most UTFMax-1
	// bytes, as far as one goes (a value that is not UTF-8 has none).
	cut := maxExecValue
	for cut > maxExecValue-(utf8.UTFMax-1) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:cut], len(s)-cut)
}

// environ returns tlspilot's environment without any TLSPILOT_ variable
// or any named in hide (Options.HideEnv), followed by the payload's
// variables.
func (p Payload) environ(hide []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(kv, "TLSPILOT_") && !slices.Contains(hide, name) {
			env = append(env, kv)
		}
	}
	ours := []string{
		"TLSPILOT_EVENT=" + p.Event,
		"TLSPILOT_CERT_ID=" + p.CertID,
		"TLSPILOT_NAMES=" + strings.Join(p.Names, " "),
		"TLSPILOT_KEY_TYPE=" + p.KeyType,
		"TLSPILOT_NOT_AFTER=" + rfc3339(p.NotAfter),
		"TLSPILOT_ERROR=" + p.Error,
		"TLSPILOT_ATTEMPT=" + strconv.Itoa(p.Attempt),
		"TLSPILOT_RETRY_AT=" + rfc3339(p.RetryAt),
		"TLSPILOT_TIME=" + p.Time.Format(time.RFC3339),
	}
	for _, kv := range ours {
		env = append(env, execValue(kv))
	}
	return env
}

func rfc3339(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}
