package tlspilot

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestAccountReused: one account per CA and contact, created once; a new
// Manager on the same storage reuses it and the key is never rewritten.
func TestAccountReused(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "acct1.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	keyPath := cfg.StorageDir + "/data/accounts"
	before := readTree(t, keyPath)
	m2 := startManager2(t, p, cfg)
	if err := m2.Manage(context.Background(), "acct2.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m2, 30*time.Second)
	if got := p.RequestsTo("/sign-me-up"); got < 1 {
		t.Fatalf("no account requests seen")
	}
	after := readTree(t, keyPath)
	if len(before) != 2 || len(after) != len(before) {
		t.Fatalf("account files before %d, after %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s was rewritten", k)
		}
	}
	if n := p.RequestsTo("/sign-me-up"); n > 3 {
		t.Errorf("%d newAccount requests for one account (with 20%% bad nonces)", n)
	}
}

// TestTermsMustBeAgreed: a CA with terms of service refuses to serve a
// configuration that does not agree to them, with a clear error.
func TestTermsMustBeAgreed(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.AgreeTerms = false
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "terms.example.test"); err != nil {
		t.Fatal(err)
	}
	f := waitEvent(t, ev, EventFailed, 1, 30*time.Second)
	if !strings.Contains(f.Err.Error(), "terms of service") {
		t.Errorf("error = %v", f.Err)
	}
	if p.Orders() != 0 || p.RequestsTo("/sign-me-up") != 0 {
		t.Errorf("orders %d, account requests %d; want none", p.Orders(), p.RequestsTo("/sign-me-up"))
	}
}

// TestExternalAccountBinding: a CA that requires EAB issues with the key
// id and HMAC key, and refuses without them.
func TestExternalAccountBinding(t *testing.T) {
	hmac := base64.RawURLEncoding.EncodeToString([]byte("an hmac key of 32 bytes, really!"))
	p := testenv.StartPebble(t, testenv.PebbleOptions{EAB: map[string]string{"kid-1": hmac}})

	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "noeab.example.test"); err != nil {
		t.Fatal(err)
	}
	f := waitEvent(t, ev, EventFailed, 1, 30*time.Second)
	if !strings.Contains(f.Err.Error(), "external account binding") {
		t.Errorf("error without EAB = %v", f.Err)
	}

	cfg2 := testConfig(t, p, nil)
	cfg2.StorageDir = cfg.StorageDir // m answers the challenges through the shared storage
	cfg2.EAB = &EAB{KeyID: "kid-1", HMACKey: hmac}
	m2 := startManager2(t, p, cfg2)
	if err := m2.Manage(context.Background(), "eab.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m2, 30*time.Second)
}
