package tlspilot

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestUnmanage: an unmanaged certificate is no longer served or renewed,
// stays in storage, and is served again from storage when managed again.
func TestUnmanage(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	m := startManager(t, p, testConfig(t, p, nil))
	ctx := context.Background()
	if err := m.Manage(ctx, "keep.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(ctx, "gone.example.test", "www.gone.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	m.Unmanage("WWW.gone.example.test")
	if _, err := m.GetCertificate(helloFor("gone.example.test")); err == nil {
		t.Error("an unmanaged name is still served")
	}
	if st := m.Status(); len(st) != 1 || st[0].Names[0] != "keep.example.test" {
		t.Errorf("status after Unmanage = %+v", st)
	}
	m.Unmanage("never.example.test") // no effect
	orders := p.Orders()
	if err := m.Manage(ctx, "gone.example.test", "www.gone.example.test"); err != nil {
		t.Fatal(err)
	}
	if st := waitServing(t, m, time.Second); len(st) != 2 {
		t.Fatalf("status = %+v", st)
	}
	handshake(t, m, "www.gone.example.test", nil)
	if p.Orders() != orders {
		t.Errorf("managing again placed %d new orders, want 0 (stored certificate)", p.Orders()-orders)
	}
}
