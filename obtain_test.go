package tlspilot

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

func TestObtainOneName(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	m := startManager(t, p, testConfig(t, p, ev))
	if err := m.Manage(context.Background(), "one.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	chain := handshake(t, m, "one.example.test", nil)
	verify(t, chain, p.IssuerRoots(t), "one.example.test")
	if got := p.Orders(); got != 1 {
		t.Errorf("orders = %d, want 1", got)
	}
	if n := len(ev.of(EventObtained)); n != 1 {
		t.Errorf("obtained events = %d, want 1", n)
	}
}
