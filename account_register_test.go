package tlspilot

import (
	"context"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestRegisterAccount: RegisterAccount registers the account before any
// order; run again (a new Manager on the same storage, as a second
// `tlspilot init`) it keeps the account and its key, asking the CA only
// about its state; after the CA deactivated it, it replaces it with a
// new account and a new key, the old key kept aside.
func TestRegisterAccount(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	ctx := context.Background()
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := m.AccountStatus(ctx); st.State != AccountUnregistered {
		t.Fatalf("before: %+v", st)
	}
	st, err := m.RegisterAccount(ctx)
	if err != nil || st.State != AccountValid || st.URL == "" {
		t.Fatalf("RegisterAccount = %+v, %v", st, err)
	}
	if n := p.RequestsTo("/order-plz"); n != 0 {
		t.Errorf("%d orders placed, want none", n)
	}
	before := readTree(t, cfg.StorageDir+"/data/accounts")

	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m2.RegisterAccount(ctx)
	if err != nil || again.URL != st.URL || again.State != AccountValid {
		t.Errorf("again: %+v, %v; want %s valid", again, err, st.URL)
	}
	after := readTree(t, cfg.StorageDir+"/data/accounts")
	for path, v := range before {
		if after[path] != v {
			t.Errorf("%s rewritten by a second RegisterAccount", path)
		}
	}

	old := deactivate(t, m2)
	m3, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	next, err := m3.RegisterAccount(ctx)
	if err != nil || next.URL == old || next.State != AccountValid || len(next.Replaces) != 1 || next.Replaces[0] != old {
		t.Errorf("after deactivation: %+v, %v; want a new account replacing %s", next, err, old)
	}
	if n := len(readTree(t, cfg.StorageDir+"/data/accounts")); n != len(before)+1 {
		t.Errorf("%d account files, want %d (the old key kept aside)", n, len(before)+1)
	}
}
