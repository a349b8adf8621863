package tlspilot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// lineLog is a slog.Handler that keeps every record at error level as
// one line: the message and its attributes.
type lineLog struct {
	mu     sync.Mutex
	errors []string
}

func (l *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lineLog) WithGroup(string) slog.Handler            { return l }

func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.errors = append(l.errors, line)
	l.mu.Unlock()
	return nil
}

// errorsWith returns the error lines that contain every one of words.
func (l *lineLog) errorsWith(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.errors {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// TestDamagedCertObtainedAgain: a managed certificate whose stored record
// does not decode (a truncated cert.json) is not taken for a certificate
// never obtained: the Manager logs it at error with the certificate's id
// and record, and while the certificate is obtained again its status says
// why (LastError: the stored certificate is unreadable). Once obtained,
// the error is gone.
func TestDamagedCertObtainedAgain(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	log := &lineLog{}
	cfg.Logger = slog.New(log)
	const name = "damaged.example.test"
	id := certstore.CertID([]string{name}, keys.ECDSAP256)
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(t.Context(), "certs/"+id+"/cert.json", []byte(`{"names":["damaged.exa`)); err != nil {
		t.Fatal(err)
	}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveChallenges(t, p, m)
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if st := m.Status()[0]; !strings.Contains(st.LastError, "damaged") {
		t.Errorf("status after Manage: last error %q, want the damaged record", st.LastError)
	}
	var mu sync.Mutex
	var during []CertStatus
	err = m.Renew(t.Context(), RenewOptions{Progress: func(_, step string) {
		if step == StepContacting {
			mu.Lock()
			during = m.Status()
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(during) != 1 || during[0].State != StatePending || !strings.Contains(during[0].LastError, "damaged") ||
		!strings.Contains(during[0].LastError, "obtaining it again") {
		t.Errorf("status while obtained again: %+v; want pending, with the damaged record as last error", during)
	}
	if n := len(log.errorsWith(id, "cert.json")); n != 1 {
		t.Errorf("no error logged naming %s and its cert.json; errors: %q", id, log.errorsWith())
	}
	if st := m.Status()[0]; !st.Serving || st.LastError != "" {
		t.Errorf("after the new certificate: serving %t, last error %q; want serving, no error", st.Serving, st.LastError)
	}
}
