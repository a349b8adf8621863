package notify

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTrialWebhookSecretAtClipHidden: what a receiver answers is cut to
// maxAnswer bytes before it is logged, and the URL's secrets were hidden
// only after the cut: a secret the cut went through was no longer whole,
// so it was not recognised and its start was logged. The body, the
// status line and a transport error quoting the receiver are each cut.
func TestTrialWebhookSecretAtClipHidden(t *testing.T) {
	const secret = "s3cr3t-t0ken-0123456789"
	const lead = "Cannot POST /services/T0/B0/"
	for name, tc := range map[string]struct {
		raw    bool
		answer string
	}{
		"body":   {answer: strings.Repeat("x", maxAnswer-7-len(lead)) + lead + secret},
		"status": {raw: true, answer: "HTTP/1.1 404 " + strings.Repeat("x", maxAnswer-7-len("404 ")) + secret + "\r\nContent-Length: 0\r\n\r\n"},
		"transport error": {raw: true, answer: "HTTP/1.1 200 OK\r\n" +
			strings.Repeat(secret+"/", 40) + "\r\n\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var webhook string
			if tc.raw {
				webhook = rawReceiver(t, tc.answer) + "services/T0/B0/" + secret
			} else {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusNotFound)
					_, _ = io.WriteString(w, tc.answer)
				}))
				t.Cleanup(srv.Close)
				webhook = srv.URL + "/services/T0/B0/" + secret
			}
			l := &logs{}
			n := newNotifier(t, Options{Webhook: webhook, Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			if len(l.records(t, "notify webhook failed")) != 1 {
				t.Fatalf("log:\n%.3000s", l)
			}
			if strings.Contains(l.String(), secret[:7]) {
				t.Errorf("the start of the URL's secret is in the log:\n%.3000s", l)
			}
		})
	}
}

// TestTrialHideSecretsOverlapping: two of the URL's secrets that overlap
// where an answer quotes them (a path segment ending as a query value
// starts) were hidden one after the other: the first replaced took the
// common part, the second then no longer matched, and its end was
// logged.
func TestTrialHideSecretsOverlapping(t *testing.T) {
	w, err := newWebhook(Options{Webhook: "https://hooks.example.test/h/AAAAAAAABBBB/x?k=BBBBCCCCCCCC", Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]string{
		"got AAAAAAAABBBBCCCCCCCC here": "got … here",
		"got BBBBCCCCCCCC here":         "got … here",
		"AAAAAAAABBBB/x?k=BBBBCCCCCCCC": "…?…",
		"no secret":                     "no secret",
	} {
		if got := w.hideSecrets(s); got != want {
			t.Errorf("hideSecrets(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestTrialWebhookAnswerEchoingBasicAuthHidden: net/http sends a URL's
// user and password as an Authorization header ("Basic " and their
// base64), and a receiver that refuses them may quote the header back
// (a 401 page listing the request's headers): the start of its answer
// was logged with the password, encoded but not hidden, in it.
func TestTrialWebhookAnswerEchoingBasicAuthHidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "refused: Authorization: "+r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	l := &logs{}
	u := strings.Replace(srv.URL, "http://", "http://alerts:correct-horse-battery@", 1) + "/hook"
	n := newNotifier(t, Options{Webhook: u, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	rec := l.records(t, "notify webhook failed")
	if len(rec) != 1 {
		t.Fatalf("log:\n%s", l)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte("alerts:correct-horse-battery"))
	if e, _ := rec[0]["error"].(string); strings.Contains(e, encoded) || !strings.Contains(e, "refused: Authorization: Basic …") {
		t.Errorf("error %q: want the answer with the encoded password hidden", e)
	}
}
