package notify

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// rawReceiver answers every request with answer, as written, and closes
// the connection.
func rawReceiver(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
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
				_, _ = io.WriteString(c, answer)
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/"
}

// TestWebhookTransportErrorBoundedInLog: a receiver also decides what
// net/http's transport error says, and net/http quotes it whole: a
// malformed status code or header line of hundreds of KiB was logged
// whole in the failure's record, as the status line and Location were
// before they were clipped.
func TestWebhookTransportErrorBoundedInLog(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	for name, answer := range map[string]string{
		"status code": "HTTP/1.1 " + long + "\r\n\r\n",
		"header":      "HTTP/1.1 200 OK\r\n" + long + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			l := &logs{}
			n := newNotifier(t, Options{Webhook: rawReceiver(t, answer), Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			rec := l.records(t, "notify webhook failed")
			if len(rec) != 1 {
				t.Fatalf("log:\n%.2000s", l)
			}
			if e, _ := rec[0]["error"].(string); len(e) > 4<<10 || !strings.Contains(e, "xxxx") || !strings.Contains(e, "more bytes") {
				t.Errorf("error of %d bytes logged: %.300s…", len(e), e)
			}
		})
	}
}

// TestExecValueKeepsInvalidUTF8: a value that is not UTF-8 (a reload
// command's binary output, say) is cut near maxExecValue like any
// other. The cut looked back for the start of a character as far as it
// took, and a value of continuation bytes lost everything it said.
func TestExecValueKeepsInvalidUTF8(t *testing.T) {
	for name, s := range map[string]string{
		"continuation bytes": strings.Repeat("\x80", 40<<10),
		"UTF-8":              strings.Repeat("é", 20<<10),
		"binary":             strings.Repeat("\xff\xbf\x00", 15<<10),
	} {
		t.Run(name, func(t *testing.T) {
			got := execValue(s)
			kept, _, ok := strings.Cut(got, "… (")
			if !ok || len(kept) < maxExecValue-utf8.UTFMax || len(kept) > maxExecValue || strings.Contains(got, "\x00") {
				t.Errorf("execValue of %d bytes kept %d bytes: %.40q…", len(s), len(kept), got)
			}
			if utf8.ValidString(s) && !utf8.ValidString(got) {
				t.Errorf("execValue of valid UTF-8 is not valid UTF-8")
			}
		})
	}
}

// TestWebhookRedirectLocationHidesSecret: a receiver that redirects the
// webhook's URL to itself with a trailing slash (as many web frameworks
// do), or to a relative path below it, has its Location logged, and
// with it the secret in the path that ShownURL keeps out of the log.
// It is shown as the webhook's URL is, saying the slash was added.
func TestWebhookRedirectLocationHidesSecret(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	for name, location := range map[string]func(self string) string{
		"absolute": func(self string) string { return self + "/services/T0/B0/" + secret + "/" },
		"relative": func(string) string { return "/services/T0/B0/" + secret + "/" },
	} {
		t.Run(name, func(t *testing.T) {
			var self string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", location(self))
				w.WriteHeader(http.StatusMovedPermanently)
			}))
			t.Cleanup(srv.Close)
			self = srv.URL
			l := &logs{}
			n := newNotifier(t, Options{Webhook: srv.URL + "/services/T0/B0/" + secret, Logger: l.logger()})
			n.Notify(failed())
			closeWithin(t, n, 30*time.Second)
			rec := l.records(t, "notify webhook failed")
			if len(rec) != 1 {
				t.Fatalf("log:\n%s", l)
			}
			if strings.Contains(l.String(), secret) {
				t.Errorf("the URL's secret is in the log:\n%s", l)
			}
			if e, _ := rec[0]["error"].(string); !strings.Contains(e, srv.URL+"/services/…") || !strings.Contains(e, "the webhook's URL with a trailing slash") {
				t.Errorf("error %q does not show the Location as the webhook's URL with a trailing slash", e)
			}
		})
	}
}

// TestWebhookAnswerEchoingURLHidesSecret: a receiver that does not know
// the path answers 404 with it in its body, as Express does ("Cannot
// POST /services/T0/B0/SECRET"), and the start of the body is logged:
// the secret ShownURL keeps out of the log was in it all the same.
func TestWebhookAnswerEchoingURLHidesSecret(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "Cannot POST "+r.URL.RequestURI()+" (token "+r.URL.Query().Get("token")+")")
	}))
	t.Cleanup(srv.Close)
	l := &logs{}
	n := newNotifier(t, Options{Webhook: srv.URL + "/services/T0/B0/" + secret + "?token=" + secret, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	rec := l.records(t, "notify webhook failed")
	if len(rec) != 1 {
		t.Fatalf("log:\n%s", l)
	}
	if strings.Contains(l.String(), secret) {
		t.Errorf("the URL's secret is in the log:\n%s", l)
	}
	if e, _ := rec[0]["error"].(string); !strings.Contains(e, "Cannot POST /services/…") {
		t.Errorf("error %q does not show the answer, the secret elided", e)
	}
}
