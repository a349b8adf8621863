package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWebhookURLPasswordNotLogged: a webhook URL with user:password
// (which the client sends as basic authentication) is logged with the
// password hidden, in the url attribute and in the error.
func TestWebhookURLPasswordNotLogged(t *testing.T) {
	r := newReceiver(t, http.StatusForbidden)
	const password = "pa55-in-the-url"
	l := &logs{}
	n := newNotifier(t, Options{Webhook: strings.Replace(r.srv.URL, "http://", "http://hook:"+password+"@", 1) + "/tls",
		Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests; log:\n%s", len(got), l)
	}
	if u, p, ok := (&http.Request{Header: got[0].header}).BasicAuth(); !ok || u != "hook" || p != password {
		t.Errorf("basic authentication %q %q %v, want the URL's", u, p, ok)
	}
	rec := l.records(t, "notify webhook failed")
	if len(rec) != 1 {
		t.Fatalf("log:\n%s", l)
	}
	if strings.Contains(l.String(), password) {
		t.Errorf("the URL's password is in the log:\n%s", l)
	}
	if want := strings.Replace(r.srv.URL, "http://", "http://hook:xxxxx@", 1) + "/tls"; rec[0]["url"] != want ||
		!strings.Contains(rec[0]["error"].(string), want) {
		t.Errorf("url %v, error %v; want %s in both", rec[0]["url"], rec[0]["error"], want)
	}
}

// TestWebhookURLPasswordNotLoggedOnConnectionError: the same when the
// receiver cannot be reached (the error then comes from net/http).
func TestWebhookURLPasswordNotLoggedOnConnectionError(t *testing.T) {
	r := newReceiver(t)
	r.srv.Close()
	const password = "pa55-in-the-url"
	l := &logs{}
	n := newNotifier(t, Options{Webhook: strings.Replace(r.srv.URL, "http://", "http://hook:"+password+"@", 1),
		Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if rec := l.records(t, "notify webhook failed"); len(rec) != 1 {
		t.Fatalf("log:\n%s", l)
	}
	if strings.Contains(l.String(), password) {
		t.Errorf("the URL's password is in the log:\n%s", l)
	}
}

// TestWebhookURLPathNotLogged: chat services put a webhook's secret in
// its path (Slack's https://hooks.slack.com/services/T…/B…/SECRET) or
// query: logs and errors show the scheme, host and first path segment
// only; the whole URL was logged with every failure.
func TestWebhookURLPathNotLogged(t *testing.T) {
	r := newReceiver(t, http.StatusForbidden)
	const secret = "s3cr3t-t0ken"
	l := &logs{}
	n := newNotifier(t, Options{Webhook: r.srv.URL + "/services/T0/B0/" + secret + "?token=" + secret, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if len(r.requests()) != 1 {
		t.Fatalf("%d requests; log:\n%s", len(r.requests()), l)
	}
	if strings.Contains(l.String(), secret) {
		t.Errorf("the URL's secret is in the log:\n%s", l)
	}
	rec := l.records(t, "notify webhook failed")
	if want := r.srv.URL + "/services/…"; len(rec) != 1 || rec[0]["url"] != want {
		t.Errorf("log:\n%s\nwant url %s", l, want)
	}
}
