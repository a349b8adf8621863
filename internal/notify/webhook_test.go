package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one request a test webhook got.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server that answers each request with the next
// status of codes (200 once they run out) and records what it got.
type receiver struct {
	mu    sync.Mutex
	codes []int
	got   []received
	srv   *httptest.Server
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	r := &receiver{codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Method, req.Header.Clone(), body})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code, r.codes = r.codes[0], r.codes[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "answer from the receiver")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// readSecret writes content to a file of mode 0600 and reads it back with
// ReadSecret.
func readSecret(t *testing.T, content string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadSecret(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWebhookJSONAndSignature: the body is the documented JSON, with
// exactly the documented fields, signed with HMAC-SHA256 of the secret.
func TestWebhookJSONAndSignature(t *testing.T) {
	r := newReceiver(t)
	secret := "correct horse battery staple"
	l := &logs{}
	n := newNotifier(t, Options{Webhook: r.srv.URL + "/hooks/tls", WebhookSecret: readSecret(t, "  "+secret+"\n"), Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1; log:\n%s", len(got), l)
	}
	req := got[0]
	if req.method != http.MethodPost || req.header.Get("Content-Type") != "application/json" || req.header.Get("X-Tlspilot-Event") != "renew-failed" {
		t.Errorf("%s %v", req.method, req.header)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.body)
	sig, ok := strings.CutPrefix(req.header.Get("X-Tlspilot-Signature"), "sha256=")
	want, _ := hex.DecodeString(sig)
	if !ok || !hmac.Equal(want, mac.Sum(nil)) {
		t.Errorf("signature %q does not match the body under the secret", req.header.Get("X-Tlspilot-Signature"))
	}
	var doc map[string]any
	if err := json.Unmarshal(req.body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.body)
	}
	wantDoc := map[string]any{
		"event":     "renew-failed",
		"cert_id":   "example.com-ecdsa-p256",
		"names":     []any{"example.com", "www.example.com"},
		"key_type":  "ecdsa-p256",
		"not_after": "2026-03-01T12:00:00Z",
		"error":     "obtain example.com: line one\nline 'two' with \"quotes\" and $HOME",
		"attempt":   3.0,
		"retry_at":  "2026-02-20T07:15:00Z",
		"time":      "2026-02-20T07:00:00Z",
	}
	if !reflect.DeepEqual(doc, wantDoc) {
		t.Errorf("body\n got %v\nwant %v", doc, wantDoc)
		t.Errorf("fields %q", slices.Sorted(maps.Keys(doc)))
	}
	if r := l.records(t, "notify webhook delivered"); len(r) != 1 {
		t.Errorf("log:\n%s", l)
	}
}

// TestWebhookNullsAndUnsigned: unknown times are null, and without a
// secret there is no signature header.
func TestWebhookNullsAndUnsigned(t *testing.T) {
	r := newReceiver(t)
	n := newNotifier(t, Options{Webhook: r.srv.URL})
	n.Notify(event("a"))
	closeWithin(t, n, 30*time.Second)
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	if h := got[0].header.Get("X-Tlspilot-Signature"); h != "" {
		t.Errorf("signature %q without a secret", h)
	}
	want := `{"event":"renewed","cert_id":"a","names":["a.example"],"key_type":"","not_after":null,"error":"","attempt":0,"retry_at":null,"time":"0001-01-01T00:00:00Z"}`
	if string(got[0].body) != want {
		t.Errorf("body\n got %s\nwant %s", got[0].body, want)
	}
}

// TestWebhookRetries: a 503 is tried again, then delivered.
func TestWebhookRetries(t *testing.T) {
	r := newReceiver(t, http.StatusServiceUnavailable)
	l := &logs{}
	n := newNotifier(t, Options{Webhook: r.srv.URL, WebhookSecret: readSecret(t, "k"), Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	got := r.requests()
	if len(got) != 2 || string(got[0].body) != string(got[1].body) {
		t.Fatalf("%d requests; log:\n%s", len(got), l)
	}
	if rec := l.records(t, "notify webhook delivered"); len(rec) != 1 || rec[0]["attempt"] != 2.0 {
		t.Errorf("log:\n%s", l)
	}
}

// TestWebhookFailureLogged: a 4xx is not tried again; it is logged at
// ERROR with the status and the start of the answer.
func TestWebhookFailureLogged(t *testing.T) {
	r := newReceiver(t, http.StatusForbidden)
	l := &logs{}
	n := newNotifier(t, Options{Webhook: r.srv.URL, Logger: l.logger()})
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if got := r.requests(); len(got) != 1 {
		t.Errorf("%d requests, want 1", len(got))
	}
	rec := l.records(t, "notify webhook failed")
	if len(rec) != 1 || rec[0]["level"] != "ERROR" || rec[0]["error"] != "webhook: "+r.srv.URL+` answered 403 Forbidden: "answer from the receiver"` {
		t.Errorf("log:\n%s", l)
	}
}

// TestWebhookTimeout: a receiver that never answers is abandoned at the
// timeout.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	l := &logs{}
	n := newNotifier(t, Options{Webhook: srv.URL, Timeout: 500 * time.Millisecond, Logger: l.logger()})
	start := time.Now()
	n.Notify(failed())
	closeWithin(t, n, 30*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("delivery took %v with a timeout of 500ms", d)
	}
	if rec := l.records(t, "notify webhook failed"); len(rec) != 1 || !strings.Contains(rec[0]["error"].(string), "context deadline exceeded") {
		t.Errorf("log:\n%s", l)
	}
}

// TestSign checks Sign against openssl:
// printf '{"a":1}' | openssl dgst -sha256 -hmac key
func TestSign(t *testing.T) {
	if got := Sign([]byte("key"), []byte(`{"a":1}`)); got != "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342" {
		t.Errorf("got %s", got)
	}
}
