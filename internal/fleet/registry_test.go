package fleet

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// newRegistry returns a Registry over a new file storage, and the storage.
func newRegistry(t *testing.T) (*Registry, storage.Storage) {
	t.Helper()
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// TestEnrollRedeem: a token is 256 random bits in base64url, stored only
// as its hash with the host, the policy and the expiry; it enrols its
// host once, and a replay or a made-up token is refused.
func TestEnrollRedeem(t *testing.T) {
	ctx := context.Background()
	r, st := newRegistry(t)
	e, err := r.Enroll(ctx, "db1", []string{"DB1.example.com", "*.db1.example.com", "db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Token) != 43 || strings.Trim(e.Token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("token %q: want 43 base64url characters", e.Token)
	}
	if want := []string{"db1.example.com", "*.db1.example.com"}; !slices.Equal(e.Agent.Names, want) {
		t.Errorf("policy %q, want %q", e.Agent.Names, want)
	}
	if d := time.Until(e.Expires); d < DefaultTokenTTL-time.Minute || d > DefaultTokenTTL {
		t.Errorf("token expires in %v, want %v", d, DefaultTokenTTL)
	}
	keys, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, err := st.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, e.Token) || bytes.Contains(v, []byte(e.Token)) {
			t.Errorf("%s holds the token in clear", k)
		}
	}
	var rec token
	if err := r.load(ctx, tokenKey(e.Token), &rec); err != nil || rec.Host != "db1" || !rec.Expires.Equal(e.Expires) || len(rec.Names) != 2 {
		t.Errorf("token record %+v, %v", rec, err)
	}

	a, err := r.Redeem(ctx, e.Token)
	if err != nil || a.Host != "db1" || a.Enrolled.IsZero() {
		t.Fatalf("Redeem: %+v, %v", a, err)
	}
	if _, err := r.Redeem(ctx, e.Token); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("replayed token: %v, want ErrTokenUsed", err)
	}
	if _, err := r.Redeem(ctx, "made-up"); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("made-up token: %v, want ErrTokenUnknown", err)
	}
}

// TestTokenExpires: a token is refused once its lifetime has passed; one
// made later still works.
func TestTokenExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r, _ := newRegistry(t)
		old, err := r.Enroll(ctx, "db1", []string{"db1.example.com"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Minute)
		fresh, err := r.Enroll(ctx, "db2", []string{"db2.example.com"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Minute)
		if _, err := r.Redeem(ctx, old.Token); !errors.Is(err, ErrTokenExpired) || !strings.Contains(err.Error(), "tlspilot issuer enroll") {
			t.Errorf("token an hour old: %v, want ErrTokenExpired saying what to do", err)
		}
		if _, err := r.Redeem(ctx, fresh.Token); err != nil {
			t.Errorf("token half an hour old: %v", err)
		}
		if _, err := r.Enroll(ctx, "db3", []string{"db3.example.com"}, MaxTokenTTL+time.Second); err == nil {
			t.Error("a token for longer than MaxTokenTTL")
		}
	})
}

// TestRedeemOnce: processes (here goroutines, each with its own Store
// over the same directory) redeeming one token at once: one succeeds.
func TestRedeemOnce(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	e, err := r.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 6 {
		wg.Go(func() {
			if _, err := r.Redeem(ctx, e.Token); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrTokenUsed) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d redemptions succeeded, want 1", ok)
	}
}

// TestRevoke: a revoked agent is marked at once with its client
// certificates dropped; a token made before cannot enrol it again, a new
// enrolment can.
func TestRevoke(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	first, _ := r.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	pending, _ := r.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if _, err := r.Redeem(ctx, first.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	a, err := r.Agent(ctx, "db1")
	if err != nil || a.Revoked.IsZero() || a.ClientCerts != nil {
		t.Fatalf("after Revoke: %+v, %v", a, err)
	}
	if _, err := r.Redeem(ctx, pending.Token); !errors.Is(err, ErrRevoked) {
		t.Errorf("token made before the revocation: %v, want ErrRevoked", err)
	}
	again, err := r.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if err != nil || !again.WasRevoked {
		t.Fatalf("enrol again: WasRevoked %v, %v", again != nil && again.WasRevoked, err)
	}
	if a, err := r.Redeem(ctx, again.Token); err != nil || !a.Revoked.IsZero() {
		t.Errorf("redeem after re-enrolment: %+v, %v", a, err)
	}
	if _, err := r.Revoke(ctx, "db9"); !errors.Is(err, ErrNoAgent) {
		t.Errorf("revoke an unknown host: %v, want ErrNoAgent", err)
	}
}

// TestAgents: every agent, sorted by host, and refusals of bad hosts and
// names.
func TestAgents(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	for _, h := range []string{"web2", "db1", "web1"} {
		if _, err := r.Enroll(ctx, h, []string{h + ".example.com"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	as, err := r.Agents(ctx)
	if err != nil || len(as) != 3 || as[0].Host != "db1" || as[2].Host != "web2" {
		t.Fatalf("Agents: %v, %v", as, err)
	}
	for _, tc := range []struct {
		host  string
		names []string
	}{
		{"../x", []string{"x.example.com"}},
		{"DB1", []string{"x.example.com"}},
		{"db1", nil},
		{"db1", []string{"192.0.2.1"}},
		{"db1", []string{"*.*.example.com"}},
		{"db1", []string{"localhost"}},
	} {
		if _, err := r.Enroll(ctx, tc.host, tc.names, 0); err == nil {
			t.Errorf("Enroll(%q, %q) accepted", tc.host, tc.names)
		}
	}
}

// TestCheckPolicies: a stored policy holding a name the current rules
// refuse (made by an older tlspilot: an all-digit last label) is
// reported, with the host and what to do; valid and revoked agents are
// not (found by an upgrade trial: the issuer kept refusing the agent's
// requests without a word at start).
func TestCheckPolicies(t *testing.T) {
	st, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := r.Enroll(ctx, "good", []string{"good.example.com"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"old", "gone"} {
		if _, err := r.change(ctx, host, func(a *Agent, _ bool) error {
			a.Names = []string{host + ".example.123"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	errs, err := r.CheckPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "agent old: its policy [old.example.123]") ||
		!strings.Contains(errs[0].Error(), "revoke-agent old") {
		t.Errorf("CheckPolicies: %v; want one error for agent old", errs)
	}
}
