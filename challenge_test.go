package tlspilot

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestDualKeyChallenges manages an ECDSA and an RSA certificate for the
// same names, so two orders validate the same identifiers at the same
// time, with each challenge type. No attempt may fail but for Pebble's
// nonce rejection, and no order may be placed twice: one order's answer
// must never replace or remove the other's (issue 8, item 2). Three rounds of three names give the orders nine
// chances to collide. Authorization reuse is on for http-01 and dns-01, so
// an order may also find the other's authorization valid.
func TestDualKeyChallenges(t *testing.T) {
	for _, challenge := range []string{TLSALPN01, HTTP01, DNS01} {
		t.Run(challenge, func(t *testing.T) {
			ev := &events{}
			var (
				p   *testenv.Pebble
				cfg Config
				b   *testenv.BIND
			)
			switch challenge {
			case TLSALPN01:
				p = testenv.StartPebble(t, testenv.PebbleOptions{})
				cfg = testConfig(t, p, ev)
			case HTTP01:
				p = testenv.StartPebble(t, testenv.PebbleOptions{AuthzReuse: 100})
				cfg = testConfig(t, p, ev)
			case DNS01:
				b = testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
				p = testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr, AuthzReuse: 100})
				cfg = dnsConfig(t, p, rfc2136For(t, b), b.Addr, b.Port, ev)
			}
			cfg.Challenge = challenge
			cfg.KeyTypes = []KeyType{ECDSAP256, RSA2048}
			m := startManager(t, p, cfg)
			var all []string
			for round := range 3 {
				before := p.Orders()
				names := make([]string, 3)
				for i := range names {
					names[i] = fmt.Sprintf("n%d.r%d.dual.example.test", i, round)
				}
				all = append(all, names...)
				if err := m.Manage(context.Background(), names...); err != nil {
					t.Fatal(err)
				}
				waitServing(t, m, 60*time.Second)
				if got := p.Orders() - before; got != 2 {
					t.Errorf("round %d: orders = %d, want 2", round, got)
				}
			}
			for _, e := range ev.of(EventFailed) {
				if e.Problem != nil && e.Problem.Class == "bad-nonce" {
					continue // Pebble's nonce rejection, nothing to do with answers
				}
				t.Errorf("failed attempt for %v %s: %v", e.Names, e.KeyType, e.Err)
			}
			if b != nil {
				for _, n := range all {
					wantTXT(t, b, "_acme-challenge."+n)
				}
			}
		})
	}
}
