package tlspilot

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestEndToEndPebbleProcess runs Pebble as a separate process, with its
// random validation delays on (the only test that keeps them), and obtains
// several certificates over both challenge types.
func TestEndToEndPebbleProcess(t *testing.T) {
	p := testenv.StartPebbleProcess(t, testenv.PebbleOptions{Sleep: true})
	ev := &events{}
	m := startManager(t, p, testConfig(t, p, ev))
	certs := []Cert{
		{Names: []string{"e2e.example.test", "www.e2e.example.test"}},
		{Names: []string{"alpn.e2e.example.test"}, Challenge: TLSALPN01},
		{Names: []string{"dual.e2e.example.test"}, KeyTypes: []KeyType{ECDSAP384, RSA2048}},
	}
	if err := m.ManageCerts(context.Background(), certs...); err != nil {
		t.Fatal(err)
	}
	st := waitServing(t, m, 90*time.Second)
	if len(st) != 4 {
		t.Fatalf("status = %+v", st)
	}
	roots := p.IssuerRoots(t)
	for _, s := range st {
		for _, n := range s.Names {
			verify(t, handshake(t, m, n, nil), roots, n)
		}
	}
	if got := p.Orders(); got != 4 {
		t.Errorf("orders = %d, want 4", got)
	}
	if got := len(ev.of(EventFailed)); got != 0 {
		t.Errorf("%d failures: %+v", got, ev.of(EventFailed))
	}
}
