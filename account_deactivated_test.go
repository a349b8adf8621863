package tlspilot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// deactivate deactivates m's ACME account at the CA, as its holder (or a
// CA cleaning up) would, and returns its URL.
func deactivate(t *testing.T, m *Manager) string {
	t.Helper()
	acct, err := m.account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.client.DeactivateAccount(context.Background(), acct); err != nil {
		t.Fatalf("deactivate account: %v", err)
	}
	return acct.URL
}

// TestDeactivatedAccountReplaced: after the CA deactivated the account,
// the next order is refused ("Account has been deactivated"); tlspilot
// sees the account is gone, sets its key aside, registers a new account
// with a new key and places the order again at once: no failed attempt,
// and the status shows which account replaced which.
func TestDeactivatedAccountReplaced(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	ctx := context.Background()
	if err := m.Manage(ctx, "before.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	oldURL := deactivate(t, m)
	keysBefore := readTree(t, cfg.StorageDir+"/data/accounts")

	if err := m.Manage(ctx, "after.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 2, 30*time.Second)
	if f := ev.of(EventFailed); len(f) != 0 {
		t.Errorf("%d failed attempts, want none: %v", len(f), f[0].Err)
	}
	st := m.AccountStatus(ctx)
	if st.URL == "" || st.URL == oldURL || st.State != AccountValid || len(st.Replaces) != 1 || st.Replaces[0] != oldURL || st.Problem != "" {
		t.Errorf("account status = %+v, want a new valid account replacing %s", st, oldURL)
	}
	keysAfter := readTree(t, cfg.StorageDir+"/data/accounts")
	var retired, current int
	for path, v := range keysAfter {
		switch {
		case strings.Contains(path, "/retired/"):
			retired++
		case strings.HasSuffix(path, "/key"):
			current++
			if keysBefore[path] == v {
				t.Errorf("%s still holds the deactivated account's key", path)
			}
		}
	}
	if retired != 1 || current != 1 {
		t.Errorf("%d retired and %d current account keys, want 1 and 1: %v", retired, current, mapKeys(keysAfter))
	}
	// A restart on the same storage uses the new account.
	m2 := startManager2(t, p, cfg)
	if got := m2.AccountStatus(ctx); got.URL != st.URL {
		t.Errorf("after a restart the account is %s, want %s", got.URL, st.URL)
	}
}

// TestDeactivatedAccountKept: with KeepDeactivatedAccount, a deactivated
// account is not replaced: each attempt fails with an error that says
// what happened and what to do, no order is even placed after the first
// refusal, attempts back off, and the status shows the account's state.
func TestDeactivatedAccountKept(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.KeepDeactivatedAccount = true
	cfg.RetryMin, cfg.RetryMax = 200*time.Millisecond, time.Second
	m := startManager(t, p, cfg)
	ctx := context.Background()
	if err := m.Manage(ctx, "before.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	oldURL := deactivate(t, m)

	if err := m.Manage(ctx, "after.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventFailed, 1, 30*time.Second)
	// The first refusal made tlspilot look the account up (newAccount
	// with onlyReturnExisting); after that it knows, and asks nothing.
	orders, lookups := p.RequestsTo("/order-plz"), p.RequestsTo("/sign-me-up")
	waitEvent(t, ev, EventFailed, 3, 30*time.Second)
	for _, f := range ev.of(EventFailed)[:3] {
		msg := f.Err.Error()
		if !strings.Contains(msg, "deactivated") || !strings.Contains(msg, oldURL) || !strings.Contains(msg, "keep_deactivated_account") {
			t.Errorf("attempt %d: error %q does not say the account is deactivated and what to do", f.Attempt, msg)
		}
		if f.Type != "renew-failed" {
			t.Errorf("event type %q, want renew-failed", f.Type)
		}
	}
	if n := p.RequestsTo("/order-plz") - orders; n != 0 {
		t.Errorf("%d new orders after the account was known to be deactivated, want none", n)
	}
	if n := p.RequestsTo("/sign-me-up") - lookups; n != 0 {
		t.Errorf("%d account requests after the account was known to be deactivated, want none", n)
	}
	checkBackoff(t, ev.of(EventFailed)[:3], cfg.RetryMin, 0)
	st := m.AccountStatus(ctx)
	if st.URL != oldURL || st.State != AccountDeactivated || !strings.Contains(st.Problem, "deactivated") {
		t.Errorf("account status = %+v, want %s deactivated with a problem", st, oldURL)
	}
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
