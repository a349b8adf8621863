package notify

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestCommandRunsWhateverTheError: the error an event carries comes from
// outside (a CA's problem detail, a reload command's output) and may hold
// what the kernel refuses in an environment variable: a NUL byte, or more
// than one variable may hold (128 KiB on Linux). The command still runs,
// told the error with NULs shown as U+FFFD and cut to a bounded length
// with a note of what was cut; before, it was never started ("invalid
// argument", "argument list too long") and the event was lost.
func TestCommandRunsWhateverTheError(t *testing.T) {
	tests := []struct {
		name   string
		err    string
		prefix string // of TLSPILOT_ERROR
		cut    bool
	}{
		{"NUL", "new order: malformed (HTTP 400): bad\x00detail", "new order: malformed (HTTP 400): bad\uFFFDdetail", false},
		{"huge", "reload: " + strings.Repeat("x", 1<<20), "reload: xxxx", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			hook := script(t, dir, "hook", `printf '%s' "$TLSPILOT_ERROR" > "$1/error"`+"\n")
			l := &logs{}
			n := newNotifier(t, Options{Command: []string{hook, dir}, Logger: l.logger()})
			ev := failed()
			ev.Err = errors.New(tt.err)
			n.Notify(ev)
			closeWithin(t, n, 30*time.Second)
			b, err := os.ReadFile(filepath.Join(dir, "error"))
			if err != nil {
				t.Fatalf("the command did not run: %v\nlog:\n%.2000s", err, l)
			}
			got := string(b)
			if !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("TLSPILOT_ERROR = %.100q…, want it to start %.100q", got, tt.prefix)
			}
			if tt.cut && (len(got) > maxExecValue+100 || !strings.Contains(got, "more bytes)")) {
				t.Errorf("TLSPILOT_ERROR of %d bytes ends %q: want it cut near %d bytes, saying so", len(got), got[max(0, len(got)-40):], maxExecValue)
			}
			if !tt.cut && got != tt.prefix {
				t.Errorf("TLSPILOT_ERROR = %q, want %q", got, tt.prefix)
			}
		})
	}
}

// TestOneCertificatesEventsInOrder: a hook is told of one certificate's
// events in the order they happened, each after the one before has
// finished. Here the receiver answers the renew-failed with a 503, so
// that it is tried again a second later, while the renewal that
// followed is already known: delivered at once by another worker, it
// was overtaken by the failure's retry, and the receiver was left
// believing the renewal failed.
func TestOneCertificatesEventsInOrder(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable)
	n := newNotifier(t, Options{Webhook: r.srv.URL})
	fail := failed()
	renewed := fail
	renewed.Type, renewed.Err, renewed.Attempt = tlspilot.EventRenewed, nil, 0
	n.Notify(fail)
	n.Notify(renewed)
	n.Notify(event("other")) // another certificate's event is not held up
	closeWithin(t, n, 30*time.Second)
	var accepted []string
	for i, req := range r.requests() {
		if i == 0 {
			continue // the 503
		}
		var p Payload
		if err := json.Unmarshal(req.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.CertID == fail.CertID {
			accepted = append(accepted, p.Event)
		}
	}
	if want := []string{"renew-failed", "renewed"}; !slices.Equal(accepted, want) {
		t.Errorf("the receiver accepted %q, in that order; want %q", accepted, want)
	}
}

// TestOrderKeptUnderLoad: many events of a few certificates, run by many
// workers, reach the command in the order each certificate's happened,
// none lost.
func TestOrderKeptUnderLoad(t *testing.T) {
	dir := t.TempDir()
	hook := script(t, dir, "hook", `echo "$2" >> "$1/$3"`+"\n")
	n := newNotifier(t, Options{Command: []string{hook, dir}, Workers: 8, Queue: 200})
	types := []tlspilot.EventType{tlspilot.EventFailed, tlspilot.EventExpiring, tlspilot.EventRenewed, tlspilot.EventDeployed}
	ids := []string{"a", "b", "c"}
	var want []string
	for i := range 40 {
		typ := types[i%len(types)]
		want = append(want, string(typ))
		for _, id := range ids {
			n.Notify(tlspilot.Event{Type: typ, CertID: id, Names: []string{id + ".example"}})
		}
	}
	closeWithin(t, n, 60*time.Second)
	for _, id := range ids {
		b, err := os.ReadFile(filepath.Join(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(b)); !slices.Equal(got, want) {
			t.Errorf("%s: the command was told\n%q\nwant\n%q", id, got, want)
		}
	}
}

// TestWebhookURLPathNotLoggedOnTransportError: the secret in a webhook
// URL's path or query stays out of the log when the request itself
// fails, whatever the failure: receiver down, TLS refused, no answer
// within the timeout. net/http's error quotes the whole URL ("Post
// \"https://hooks.slack.com/services/T…/B…/SECRET\": …"), and only a
// password in it was hidden.
func TestWebhookURLPathNotLoggedOnTransportError(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	down := newReceiver(t)
	down.srv.Close()
	tlsOnly := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsOnly.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused
	tlsOnly.StartTLS()                                   // with a certificate not trusted
	t.Cleanup(tlsOnly.Close)
	hang := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(hang) })
	for name, base := range map[string]string{"down": down.srv.URL, "tls": tlsOnly.URL, "timeout": silent.URL} {
		t.Run(name, func(t *testing.T) {
			l := &logs{}
			n := newNotifier(t, Options{Webhook: base + "/services/T0/B0/" + secret + "?token=" + secret,
				Timeout: 2 * time.Second, Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			rec := l.records(t, "notify webhook failed")
			if len(rec) != 1 {
				t.Fatalf("log:\n%s", l)
			}
			if strings.Contains(l.String(), secret) {
				t.Errorf("the URL's secret is in the log:\n%s", l)
			}
			if e, _ := rec[0]["error"].(string); !strings.Contains(e, base+"/services/…") {
				t.Errorf("error %q does not name the webhook as %s/services/…", e, base)
			}
		})
	}
}

// TestWebhookAnswerBoundedInLog: what the receiver says is logged only
// in part, wherever it says it: the body (512 bytes), and also a
// Location or a status line's reason phrase, which the receiver may make
// as long as net/http takes a header (megabytes), each logged whole in
// every failure's record.
func TestWebhookAnswerBoundedInLog(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	redirect := newRedirectServer(t, http.StatusFound, func(self string) string { return self + "/" + long })
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 400 "+long+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	for name, u := range map[string]string{"location": redirect.srv.URL, "reason": "http://" + raw.Addr().String() + "/"} {
		t.Run(name, func(t *testing.T) {
			l := &logs{}
			n := newNotifier(t, Options{Webhook: u, Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			rec := l.records(t, "notify webhook failed")
			if len(rec) != 1 {
				t.Fatalf("log:\n%.2000s", l)
			}
			if e, _ := rec[0]["error"].(string); len(e) > 4<<10 || !strings.Contains(e, "xxxx") {
				t.Errorf("error of %d bytes logged: %.300s…", len(e), e)
			}
		})
	}
}
