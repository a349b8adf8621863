package tlspilot

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestRevokeReasonChecked: a reason RFC 5280 §5.3.1 does not define (7
// is unused; codes run from 0 to 10) is refused before anything is read
// or sent, with an error naming the allowed reasons. Found by a user's
// trial: RevocationReason(7) went to the CA.
func TestRevokeReasonChecked(t *testing.T) {
	m, err := New(t.Context(), noCAConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []RevocationReason{7, 11, -1, 1000} {
		err := m.Revoke(t.Context(), "revoke.example.test", r)
		if err == nil || !strings.Contains(err.Error(), "RFC 5280") ||
			!strings.Contains(err.Error(), "1 (keyCompromise)") || !strings.Contains(err.Error(), "10 (aACompromise)") ||
			strings.Contains(err.Error(), "7 (") {
			t.Errorf("Revoke with reason %d: %v; want it refused, naming the allowed reasons", int(r), err)
		}
	}
	for r := range RevocationReason(11) {
		// No certificate exists: a reason that passes gets that error.
		err := m.Revoke(t.Context(), "revoke.example.test", r)
		if passed := strings.Contains(err.Error(), "no certificate"); passed != (r != 7) {
			t.Errorf("reason %d (%s): %v", int(r), r, err)
		}
	}
	if got := RevocationReason(6).String(); got != "certificateHold" {
		t.Errorf("RevocationReason(6).String() = %q", got)
	}
}

// TestRevokeFailedOrdersNoReplacement: when the CA refuses a revocation
// (here badRevocationReason, as Let's Encrypt answers certificateHold
// from a subscriber), Revoke returns that error and orders nothing: the
// certificate is neither revoked nor replaced. Found by a user's trial:
// three refused revocations gave three new certificates.
func TestRevokeFailedOrdersNoReplacement(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	m := startManager(t, p, testConfig(t, p, ev))
	const name = "refused.example.test"
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.Run(t.Context()) }()
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	serial := m.Status()[0].Serial
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/revoke-cert" {
			return false
		}
		testenv.WriteProblem(w, http.StatusBadRequest, "badRevocationReason", "reason not allowed for subscribers", 0)
		return true
	})
	orders := p.Orders()
	for range 3 {
		err := m.Revoke(t.Context(), name, RevocationReason(6))
		var re *ReplacementError
		if p := problemOf(err); p == nil || !strings.HasSuffix(p.Type, ":badRevocationReason") || errors.As(err, &re) {
			t.Fatalf("Revoke refused by the CA: %v; want the CA's badRevocationReason, not a ReplacementError", err)
		}
	}
	if n := p.Orders() - orders; n != 0 {
		t.Errorf("%d replacement orders after refused revocations, want none", n)
	}
	if st, _ := p.CertStatus(t, serial); st != "Valid" {
		t.Errorf("certificate status at the CA: %s, want Valid", st)
	}
	if n := len(ev.of(EventRevoked)); n != 0 {
		t.Errorf("%d EventRevoked for refused revocations", n)
	}
	if st := m.Status()[0]; st.Serial != serial || st.State != StateValid {
		t.Errorf("after refused revocations: serial %s state %s; want %s valid", st.Serial, st.State, serial)
	}
}
